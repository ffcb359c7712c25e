"""The embedded XMPP service: Prosody's configuration file (config.py), the process and
prosodyctl (prosody.py), and the Prosody modules it loads (modules/): sign-in through the
appliance, the directory as shared roster, and the server-to-server policy. A host service:
the client service and the federation plugin both use it."""
