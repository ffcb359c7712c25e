"""The appliance's version, in a module of its own so that any module can import it."""

__version__ = "0.1.0"

# The MiCollab release whose peering behaviour this appliance has, as the peer link reports
# it to peers (seed 001: presence of users whose login is a UPN needs 9.4 or later on both
# sides; here such a login gets an XMPP address of its own, escaped as XEP-0106 says).
PEERING_VERSION = "9.4"

# What the peer link offers beyond 9.4's pages, listed by its /info: a peer uses a feature
# only when the other side lists it (or answers with it), never by comparing versions.
# "changes": /enterprises/<eid>/changes, what changed since a cursor (appliance/peer_feed.py).
PEER_LINK_FEATURES = ("changes",)
