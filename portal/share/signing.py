"""Short-lived file URLs, signed with the server's key and bound to one token.

A URL names the token id, the file and its expiry; the HMAC over the three proves the server
issued it. On each fetch the server checks the signature and expiry, that the token is still
live, and serves the file only from that token's sponsor's partition, whatever the path says.
Copies of the server share the key (PORTAL_SHARE_KEY, or one generated file per data root).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from portal.store import data_root_key

URL_LIFETIME_SECONDS = 15 * 60
KEY_FILE = ".share_url_key"
KEY_ENV = "PORTAL_SHARE_KEY"


def signing_key() -> bytes:
    """PORTAL_SHARE_KEY, else a key generated once per data root (shared by every copy of the
    server on it)."""
    configured = os.environ.get(KEY_ENV, "").strip()
    return (configured or data_root_key(KEY_FILE)).encode()


def signature(key: bytes, token_id: str, name: str, expires: int) -> str:
    message = f"{token_id}\n{name}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def valid(key: bytes, token_id: str, name: str, expires: int, given: str, now: float) -> bool:
    """The signature is the server's for exactly this token, file and expiry, not yet past."""
    expected = signature(key, token_id, name, expires).encode()
    # As bytes: compare_digest refuses a str with characters beyond ASCII (a tampered link).
    return hmac.compare_digest(expected, given.encode("utf-8", "replace")) and now < expires
