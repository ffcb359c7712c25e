"""The client service: the accounts sign in to the embedded XMPP service and find the
corporate directory as their roster (issue 15, being built: not registered yet). It is part
of the host, not a feature plugin: a profile that leaves federation out still serves its
users."""
