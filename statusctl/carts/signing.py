"""Standard Webhooks signing and verification (HMAC-SHA256 over `id.timestamp.body`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

# The secret's format lives in core (stores add checks it); signing and verifying use it from there.
from statusctl.domain.webhooksecret import PREFIX, SignatureError, secret_bytes

__all__ = ["PREFIX", "TOLERANCE_S", "SignatureError", "headers", "secret_bytes", "sign", "verify"]

TOLERANCE_S = 300


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256>`."""
    mac = hmac.new(secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def headers(secret: str, msg_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    ts = int(now if now is not None else time.time())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def verify(
    secrets: Iterable[str],
    request_headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_S,
) -> str:
    """Check a request against any of `secrets` (key rotation); returns the webhook-id.

    Raises SignatureError when a header is missing, the timestamp is outside
    the tolerance, or no signature matches (compared in constant time).
    """
    msg_id = request_headers.get("webhook-id")
    stamp = request_headers.get("webhook-timestamp")
    given = request_headers.get("webhook-signature")
    if not msg_id or not stamp or not given:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        ts = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a whole number of seconds") from None
    current = now if now is not None else time.time()
    if abs(current - ts) > tolerance:
        raise SignatureError("webhook-timestamp is too old or too far in the future")
    candidates = [part.strip() for part in given.split(" ") if part.strip()]
    for secret in secrets:
        expected = sign(secret, msg_id, ts, body)
        for candidate in candidates:
            if hmac.compare_digest(expected.encode(), candidate.encode()):
                return msg_id
    raise SignatureError("no webhook-signature matches")
