"""oss: updates for a statusctl Order Status System, the webhook protocol posted to its /api/updates.

Delivery is the webhook adapter's, unchanged. `check()` reads the OSS's
`/healthz` (beside `/api/updates`, under the same prefix), signed the same way
with an empty body, so a wrong secret shows: the OSS answers 401 to a bad
signature there, and `{"status": "ok", "signature": "ok"}` to a good one.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

from statusctl.carts.jsonbody import decode
from statusctl.carts.webhook import WebhookAdapter

UPDATES_PATH = "/api/updates"


def health_url(updates_url: str) -> str:
    """`…/api/updates` → `…/healthz`; any other path → `/healthz` at the host's root."""
    parts = urlsplit(updates_url)
    path = parts.path.rstrip("/")
    prefix = path[: -len(UPDATES_PATH)] if path.endswith(UPDATES_PATH) else ""
    return urlunsplit((parts.scheme, parts.netloc, prefix + "/healthz", "", ""))


class OssAdapter(WebhookAdapter):
    cart = "oss"

    async def check(self) -> str:
        url = health_url(self.ctx.store.url)
        headers = self.signed_headers(f"check_{uuid.uuid4().hex}", b"")
        response = await self.request("GET", url, headers=headers)
        self.judge(response, "health check")
        where = f"the Order Status System at {self.ctx.scrub(url)}"
        body = decode(response.text)
        confirmed = isinstance(body, dict) and body.get("signature") == "ok"
        if confirmed:
            return f"{where} is up and accepts our signature"
        return f"{where} is up (it did not confirm our signature; updates will show it)"


ADAPTER = OssAdapter
