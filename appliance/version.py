"""The appliance's version, in a module of its own so that any module can import it."""

__version__ = "0.1.0"

# The MiCollab release whose peering behaviour this appliance has, as the peer link reports
# it to peers (seed 001: presence of users whose login is a UPN needs 9.4 or later on both
# sides; here such a login gets an XMPP address of its own, escaped as XEP-0106 says).
PEERING_VERSION = "9.4"
