"""The client service: the accounts sign in to the embedded XMPP service and find the
corporate directory as their roster (issue 15; being built: not registered as a plugin yet)."""
