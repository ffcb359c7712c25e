"""The stored form of local passwords: SCRAM-SHA-256 keys (RFC 7677), checked against the
RFC's own exchange."""

import hashlib
import hmac
from base64 import b64decode

import pytest

from appliance.core.client import scram


def test_keys_reproduce_the_rfc_7677_exchange():
    # RFC 7677 section 3: user "user", password "pencil".
    salt, iterations = b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096
    stored = scram.keys("pencil", iterations, salt)
    auth_message = (b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
                    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    signature = hmac.digest(stored.stored_key, auth_message, "sha256")
    proof = b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored.stored_key
    server_signature = hmac.digest(stored.server_key, auth_message, "sha256")
    assert server_signature == b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def test_a_plain_password_is_checked_against_the_keys_only():
    stored = scram.keys("correct horse")
    text = str(stored)
    assert "correct horse" not in text and len(text.split("$")) == 4
    again = scram.Keys.parse(text)
    assert scram.check(again, "correct horse")
    assert not scram.check(again, "correct hors")
    assert not scram.check(again, "Correct horse")
    assert scram.keys("correct horse").salt != stored.salt  # salted: no two alike


def test_saslprep_maps_and_refuses():
    assert scram.saslprep("I\u00adX") == "IX"  # soft hyphen maps to nothing
    assert scram.saslprep("a\u00a0b") == "a b"  # non-ASCII space becomes a space
    assert scram.saslprep("\u2168") == "IX"  # NFKC
    with pytest.raises(scram.NotSaslprep):
        scram.saslprep("a\u0007b")  # control character
    with pytest.raises(scram.NotSaslprep):
        scram.keys("\u0627" + "1")  # right-to-left must end right-to-left
    assert scram.check(scram.keys("pass\u00a0word"), "pass word")
    assert not scram.check(scram.keys("x"), "a\u0007b")
