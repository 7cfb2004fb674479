"""Time-based one-time passwords (RFC 6238, over RFC 4226's HOTP): the agents' second factor.

HMAC-SHA1, 6 digits, 30-second steps: what every authenticator app reads from an otpauth://
URI. A code is accepted for the current step and one step either side (clock drift), and only
for a step later than the last one used, so an overheard code cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

DIGITS = 6
PERIOD_S = 30
# One step either side of now: 90 s of tolerance in all.
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 random bits (RFC 4226's recommended length), base32 without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret_b32: str) -> bytes:
    padded = secret_b32.upper() + "=" * (-len(secret_b32) % 8)
    return base64.b32decode(padded)


def step_at(unix_time: float) -> int:
    return int(unix_time // PERIOD_S)


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest=hashlib.sha1) -> str:
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def code_at(secret_b32: str, unix_time: float) -> str:
    return hotp(_key(secret_b32), step_at(unix_time))


def matching_step(secret_b32: str, code: str, unix_time: float, *, after_step: int | None = None) -> int | None:
    """The time step the code belongs to (within the drift), or None. Steps at or before
    `after_step` (the last code used) never match. Compared in constant time."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    key = _key(secret_b32)
    now = step_at(unix_time)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(hotp(key, step), code) and found is None:
            found = step
    return found


def provisioning_uri(secret_b32: str, account_name: str, issuer: str) -> str:
    """otpauth://totp/<issuer>:<account>?secret=…&issuer=… (Google Authenticator's key URI format)."""
    label = quote(f"{issuer}:{account_name}", safe="@:")
    query = urlencode(
        {"secret": secret_b32, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": PERIOD_S},
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"
