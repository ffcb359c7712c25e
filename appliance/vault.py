"""Secrets at rest (LDAP bind passwords, peer keys): sealed with a key derived from the
appliance's SECRET_KEY, so a copied database file alone does not give them away."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from appliance.validation import Invalid


def _fernet() -> Fernet:
    raw = hashlib.sha256(b"appliance-vault\0" + current_app.config["SECRET_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(raw.digest()))


def seal(value: str) -> str:
    """Encrypt `value` for storage; the empty string stays empty."""
    return _fernet().encrypt(value.encode()).decode() if value else ""


def unseal(token: str) -> str:
    """Decrypt a stored secret; raise ValueError when the secret key has changed since."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("A stored secret cannot be read: the appliance's secret key changed "
                         "since it was saved. Enter it again.") from None


def secret_for(typed: str, sealed: str, typed_for, sent_to, field: str, message: str) -> str:
    """The secret to send to the endpoint `sent_to`: the one typed, else the stored one
    (`sealed`, typed for the endpoint `typed_for`; None when there is none). A stored secret
    only ever goes where it was typed for: anywhere else, Invalid({field: ("retype",
    message)}) asks for it again."""
    if typed:
        return typed
    if not sealed:
        return ""
    if typed_for is None or typed_for != sent_to:
        raise Invalid({field: ("retype", message)})
    try:
        return unseal(sealed)
    except ValueError as exc:
        raise Invalid({field: ("retype", str(exc))}) from None
