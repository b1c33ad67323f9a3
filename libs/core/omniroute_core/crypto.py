"""Secrets at rest: AES-256-GCM for provider credentials, SHA-256 for API keys, scrypt for passwords."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "Cipher",
    "generate_api_key",
    "generate_encryption_key",
    "hash_api_key",
    "hash_password",
    "verify_password",
]

_PREFIX = "v1:"
API_KEY_PREFIX = "sk-omni-"


class Cipher:
    """AES-256-GCM with a random 96-bit nonce per value. Tokens look like ``v1:<base64(nonce|ciphertext)>``.

    ``aad`` binds a ciphertext to its row (e.g. the connection id), so a value copied into another row fails to
    decrypt instead of silently serving the wrong account.
    """

    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.b64decode(key_b64, validate=True)
        except ValueError as exc:
            raise ValueError("OMNIROUTE_ENCRYPTION_KEY is not valid base64") from exc
        if len(key) != 32:
            raise ValueError("OMNIROUTE_ENCRYPTION_KEY must decode to 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, aad: str = "") -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), aad.encode())
        return _PREFIX + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, aad: str = "") -> str:
        """Raises ``ValueError`` when the token is malformed, tampered with or bound to another ``aad``."""
        if not token.startswith(_PREFIX):
            raise ValueError("unknown ciphertext version")
        raw = base64.b64decode(token[len(_PREFIX) :])
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(raw[:12], raw[12:], aad.encode()).decode()
        except InvalidTag as exc:
            raise ValueError("ciphertext does not authenticate") from exc


def generate_encryption_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def generate_api_key() -> str:
    """A new API key: a fixed prefix (so leaks are greppable) and 256 bits of randomness."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 hex. API keys carry 256 random bits, so a fast hash is safe and keeps the edge lookup O(1)."""
    return hashlib.sha256(key.encode()).hexdigest()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """scrypt (n=2**14, r=8, p=1) as ``scrypt$<salt b64>$<hash b64>``."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = hash_password(password, salt=base64.b64decode(salt_b64))
    return hmac.compare_digest(expected.split("$")[2], digest_b64)
