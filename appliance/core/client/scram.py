"""Passwords of accounts that sign in locally, kept only as SCRAM-SHA-256 keys (RFC 5802,
RFC 7677): what an XMPP server needs to run SCRAM, and enough to check a PLAIN password,
but never the password itself."""

import hashlib
import hmac
import os
import stringprep
import unicodedata
from base64 import b64decode, b64encode
from dataclasses import dataclass

ITERATIONS = 4096  # RFC 7677's minimum; clients redo this work at every SCRAM sign-in
HASH = "sha256"


class NotSaslprep(ValueError):
    """The password holds characters SASLprep (RFC 4013) prohibits."""


_PROHIBITED = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3,
               stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6,
               stringprep.in_table_c7, stringprep.in_table_c8, stringprep.in_table_c9)


def saslprep(text: str) -> str:
    """RFC 4013 for a stored string: non-ASCII spaces become spaces, commonly-mapped-to-nothing
    characters go, NFKC, then prohibited and unassigned characters and bad bidi refused."""
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text
                     if not stringprep.in_table_b1(c))
    out = unicodedata.normalize("NFKC", mapped)
    for c in out:
        if any(t(c) for t in _PROHIBITED) or stringprep.in_table_a1(c):
            raise NotSaslprep(f"U+{ord(c):04X} is not allowed in a password")
    rtl = [stringprep.in_table_d1(c) for c in out]
    if any(rtl):
        if any(stringprep.in_table_d2(c) for c in out) or not (rtl[0] and rtl[-1]):
            raise NotSaslprep("a right-to-left password must start and end right-to-left")
    return out


@dataclass(frozen=True)
class Keys:
    """SCRAM keys of one password: what is stored (as text: "iterations$salt$stored$server",
    base64 parts)."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def __str__(self) -> str:
        parts = (self.salt, self.stored_key, self.server_key)
        return "$".join([str(self.iterations), *(b64encode(p).decode() for p in parts)])

    @classmethod
    def parse(cls, text: str) -> "Keys":
        iterations, salt, stored, server = text.split("$")
        return cls(int(iterations), b64decode(salt), b64decode(stored), b64decode(server))


def _client_server(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac(HASH, saslprep(password).encode(), salt, iterations)
    return (hmac.digest(salted, b"Client Key", HASH), hmac.digest(salted, b"Server Key", HASH))


def keys(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> Keys:
    """New keys for `password` with a random 16-byte salt; NotSaslprep for a bad password."""
    salt = salt if salt is not None else os.urandom(16)
    client_key, server_key = _client_server(password, salt, iterations)
    return Keys(iterations, salt, hashlib.new(HASH, client_key).digest(), server_key)


def check(stored: Keys, password: str) -> bool:
    """Whether `password` (as given in a PLAIN sign-in) is the one the keys were made from."""
    try:
        client_key, _ = _client_server(password, stored.salt, stored.iterations)
    except NotSaslprep:
        return False
    return hmac.compare_digest(hashlib.new(HASH, client_key).digest(), stored.stored_key)
