"""XMPP addresses of the appliance's accounts: `<login>@<IM domain>`, the login escaped
as XEP-0106 says where XMPP does not allow its characters in a localpart."""

# XEP-0106: the characters a login may hold that an XMPP localpart may not.
_ESCAPES = {" ": r"\20", '"': r"\22", "&": r"\26", "'": r"\27", "/": r"\2f", ":": r"\3a",
            "<": r"\3c", ">": r"\3e", "@": r"\40"}


def localpart(login: str) -> str:
    """The XMPP localpart of a login: lower case (as XMPP compares), XEP-0106 escaped, so a
    UPN login (alice@corp.example) is alice\\40corp.example."""
    out = login.lower().replace("\\", r"\5c")
    for ch, esc in _ESCAPES.items():
        out = out.replace(ch, esc)
    return out


def unescape(user: str) -> str:
    """The login a localpart stands for (the inverse of `localpart`, lower case)."""
    out = user
    for ch, esc in _ESCAPES.items():
        out = out.replace(esc, ch)
    return out.replace(r"\5c", "\\")


def address(login: str, domain: str | None) -> str | None:
    """`<localpart>@<domain>`, or None without a domain."""
    return f"{localpart(login)}@{domain}" if domain else None
