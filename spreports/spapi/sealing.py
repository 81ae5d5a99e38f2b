"""Tokens at rest: the token cache's Redis entries are sealed with authenticated encryption.

An LWA access token or a restricted data token in Redis would show in every backup, replica, dump
and ``MONITOR`` session. Entries are sealed with Fernet (AES-128-CBC and HMAC-SHA256, from the
``cryptography`` library) under the keys of ``SPREPORTS_TOKEN_KEYS``; without them, under a key
derived (HKDF-SHA256) from the LWA client secret, which every process of the fleet has anyway.

Rotation without downtime: the first key seals, every key opens. Put a new key first, deploy, and
drop the old one after an hour (the longest a cached token lives). An entry no key opens (the keys
changed, or a plain entry of an older version) counts as absent: the token is fetched again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from spreports.errors import SettingsError

_DERIVATION_INFO = b"spreports token cache v1"


class TokenSealer:
    """Seals and opens token values with the first of its keys / any of its keys."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SettingsError("SPREPORTS_TOKEN_KEYS: at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, binascii.Error):
            raise SettingsError(
                "SPREPORTS_TOKEN_KEYS: each key must be 32 url-safe base64-encoded bytes "
                '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
            ) from None

    @classmethod
    def derived_from(cls, secret: str) -> TokenSealer:
        """A sealer whose one key is derived from ``secret`` (the LWA client secret)."""
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_INFO).derive(secret.encode())
        return cls([base64.urlsafe_b64encode(key)])

    def seal(self, token: str) -> bytes:
        """The sealed form of ``token``, safe to store."""
        return self._fernet.encrypt(token.encode("utf-8"))

    def unseal(self, sealed: bytes | str) -> str | None:
        """The token sealed in ``sealed``, or None when no key opens it (or it was tampered with)."""
        try:
            return self._fernet.decrypt(sealed).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            return None

    def __repr__(self) -> str:
        return "TokenSealer(keys=**********)"


def sealer_for(keys: Sequence[str], client_secret: str) -> TokenSealer:
    """The sealer of ``SPREPORTS_TOKEN_KEYS`` when set, else one derived from the client secret."""
    if keys:
        return TokenSealer([key.encode("ascii", "replace") for key in keys])
    return TokenSealer.derived_from(client_secret)
