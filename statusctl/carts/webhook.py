"""webhook: a signed JSON POST to any endpoint (Standard Webhooks).

Body: `{id, type: "order.status_changed", timestamp, **payload}` where `id` is
the record's stable id and `timestamp` the time of the change, so every attempt
of a record sends the same bytes. Headers `webhook-id` (the same id: receivers
drop duplicates by it), `webhook-timestamp` (this attempt) and
`webhook-signature`. During a key rotation the store's `secret` may hold
several `whsec_…` secrets separated by spaces: each one signs, and a receiver
holding any of them accepts the request.

OK is any 2xx; 410 (gone) is permanent; the rest follows the common rules
(3xx is never followed). There is no harmless read on an arbitrary endpoint, so
`check()` refuses: a test would have to send a real update.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from statusctl.carts import signing
from statusctl.carts.base import Adapter, Record, Rejected

EVENT_TYPE = "order.status_changed"


class WebhookAdapter(Adapter):
    cart = "webhook"

    def secrets(self) -> list[str]:
        return self.ctx.require_secrets("secret")[0].split()

    def body(self, record: Record) -> bytes:
        """The JSON body: identical for every attempt of one record."""
        stamp = record.payload.get("changed_at") or datetime.fromtimestamp(
            record.queued, timezone.utc
        ).strftime("%Y-%m-%dT%H:%M:%SZ")
        data: dict[str, Any] = {"id": record.uid, "type": EVENT_TYPE, "timestamp": stamp}
        data.update({k: v for k, v in record.payload.items() if k not in data})
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    def signed_headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        """Standard Webhooks headers, with one signature per configured secret."""
        keys = self.secrets()
        try:
            headers = signing.headers(keys[0], msg_id, body)
            stamp = int(headers["webhook-timestamp"])
            extra = [signing.sign(key, msg_id, stamp, body) for key in keys[1:]]
        except signing.SignatureError as exc:
            raise Rejected(f"Store {self.ctx.store.name!r}: {exc}.") from None
        headers["webhook-signature"] = " ".join([headers["webhook-signature"], *extra])
        return headers

    async def deliver(self, record: Record) -> int:
        body = self.body(record)
        headers = {"content-type": "application/json", **self.signed_headers(record.uid, body)}
        response = await self.request("POST", self.ctx.store.url, content=body, headers=headers, body_needed=False)
        self.judge(response)
        return response.status_code

    async def check(self) -> str:
        raise Rejected(
            "Cart type webhook has no harmless read: an endpoint only takes updates, "
            "so a test would have to send one. Send a real update to test it."
        )


ADAPTER = WebhookAdapter
