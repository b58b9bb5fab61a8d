"""Encryption of tenant connection info with MultiFernet: the first key encrypts, all decrypt."""

from __future__ import annotations

import base64
import binascii
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class KeyFormatError(ValueError):
    """An ENCRYPTION_KEY entry that is neither a Fernet key nor a 32-character secret."""


def fernet_key(text: str) -> bytes:
    """Turn one configured key into Fernet key bytes.

    Accepted: a Fernet key as ``Fernet.generate_key()`` prints it (44 characters of url-safe
    base64), or, as in the seed's ``.env``, a 32-character ASCII secret, whose 32 bytes are used
    as the key itself.
    """
    if len(text) == 44:
        try:
            raw = base64.urlsafe_b64decode(text.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(raw) == 32:
            return text.encode("ascii")
        raise KeyFormatError("a 44-character key must be url-safe base64 of 32 bytes")
    if len(text) == 32 and text.isascii():
        return base64.urlsafe_b64encode(text.encode("ascii"))
    raise KeyFormatError(
        "expected a Fernet key (44 characters, as Fernet.generate_key() prints) "
        f"or a 32-character secret, got {len(text)} characters")


def parse_keys(value: str) -> list[bytes]:
    """Parse a comma-separated ENCRYPTION_KEY value; the first key is the one that encrypts."""
    parts = [part.strip() for part in value.split(",")]
    if not any(parts):
        raise KeyFormatError("no key given")
    keys = []
    for position, part in enumerate(parts, start=1):
        if not part:
            raise KeyFormatError(f"key {position} is empty")
        try:
            keys.append(fernet_key(part))
        except KeyFormatError as exc:
            raise KeyFormatError(f"key {position}: {exc}") from None
    return keys


def derive_key(fernet_key: bytes, purpose: str) -> bytes:
    """A 32-byte key for another purpose (token signing), derived with HKDF-SHA256."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"finvera {purpose}".encode()).derive(base64.urlsafe_b64decode(fernet_key))


class ConnectionCipher:
    """Encrypts and decrypts the connection info kept in tenant_master."""

    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, info: dict) -> str:
        """Encrypt a JSON-able dict of connection details with the first key."""
        return self._fernet.encrypt(json.dumps(info, sort_keys=True).encode()).decode("ascii")

    def decrypt(self, token: str) -> dict:
        """Decrypt a token written with any configured key."""
        try:
            return json.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken:
            raise ValueError(
                "connection info cannot be decrypted with the configured keys") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the first key (MultiFernet.rotate)."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")
