"""opencart: the OpenCart 3.0 catalog API (`index.php?route=api/…`, form posts, JSON answers).

`api/login` (form `username`, `key`) opens an API session and answers its id
as `api_token`; OpenCart drops idle sessions (about an hour) and refuses
callers whose IP is not on the API user's list. Every answer is HTTP 200,
success or not: `{"error": …}` (a string, or a dict such as `{"key": …}` or
`{"ip": …}`) is the failure, and some 3.0 releases answer a wrong key with an
empty `[]`.

A status change is one `api/order/history&order_id=N` post (`order_status_id`,
`notify=1`, `override=0`, `comment` with the note and tracking numbers; the
customer e-mail carries the comment). The order's status is read first with
`api/order/info`: when it already is the target the change was made (by an
earlier attempt of this record) and nothing is posted. The API has no read of
the history itself, so a comment sent without a status change (an extra
package while the status stays) can appear twice after a resend.

The token is kept per adapter and renewed when OpenCart answers an error to a
call made with a kept token (an expired session looks like any refusal).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from statusctl.carts.base import Adapter, Context, Record, Rejected
from statusctl.carts.jsonbody import decode
from statusctl.core.record import Payload, new_order_label

IDLE_S = 3000.0  # renew before OpenCart's idle limit on API sessions (one hour) is reached


def error_of(body: Any) -> str | None:
    """The error text of an answer, None when it reports no error."""
    if isinstance(body, dict) and body.get("error"):
        err = body["error"]
        return "; ".join(str(v) for v in err.values()) if isinstance(err, dict) else str(err)
    return None


class OpenCartAdapter(Adapter):
    cart = "opencart"
    can_test = True

    def __init__(self, client: httpx.AsyncClient, ctx: Context) -> None:
        super().__init__(client, ctx)
        self._token: str | None = None
        self._used = 0.0

    def endpoint(self) -> str:
        return f"{self.ctx.store.url.rstrip('/')}/index.php"

    async def post(self, route: str, what: str, form: dict[str, str], **query: str) -> Any:
        response = await self.request("POST", self.endpoint(), params={"route": route, **query}, data=form,
                                      headers={"Accept": "application/json"})
        self.judge(response, what)
        body = decode(response.text)
        if body is None:
            raise Rejected(f"{what}: OpenCart did not answer JSON.", status=response.status_code,
                           answer=self.ctx.excerpt(response.text))
        return body

    async def login(self) -> str:
        username, key = self.ctx.require_secrets("username", "key")
        body = await self.post("api/login", "OpenCart API login", {"username": username, "key": key})
        token = body.get("api_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            problem = error_of(body) or "wrong API username or key"
            hint = " Add this machine's IP to the API user in System > Users > API." if "ip" in problem.lower() else ""
            raise Rejected(f"OpenCart refused the API login: {self.ctx.scrub(problem)}.{hint}", status=200,
                           answer=self.ctx.excerpt(json.dumps(body)))
        self.ctx.add_secret("api_token", token)
        self._token, self._used = token, time.monotonic()
        return token

    async def api(self, route: str, what: str, order_id: str, form: dict[str, str] | None = None) -> dict[str, Any]:
        """One call with the session token; re-login once when a kept token meets an error."""
        kept = self._token is not None and time.monotonic() - self._used < IDLE_S
        token = self._token if kept and self._token else await self.login()
        body = await self.post(route, what, form or {}, api_token=token, order_id=order_id)
        if error_of(body) and kept:
            body = await self.post(route, what, form or {}, api_token=await self.login(), order_id=order_id)
        self._used = time.monotonic()
        problem = error_of(body)
        if problem or not isinstance(body, dict):
            raise Rejected(f"{what}: OpenCart answered: {self.ctx.scrub(problem or 'no result')}", status=200,
                           answer=self.ctx.excerpt(json.dumps(body)))
        return body

    async def check(self) -> str:
        await self.login()
        return "OpenCart accepted the API login (username, key and this machine's IP)"

    def status_id(self, label: str) -> str:
        value = self.ctx.require_mapping(label).strip()
        if not value.isdigit():
            raise Rejected(f"Label {label!r} maps to {value!r} for cart type opencart, which needs a numeric "
                           "order_status_id (System > Localisation > Order Statuses).")
        return value

    @staticmethod
    def comment(payload: Payload) -> str:
        lines = [payload["note"].strip()] if payload["note"] and payload["note"].strip() else []
        for pkg in payload["packages"]:
            if pkg["tracking"]:
                lines.append(f"Tracking: {pkg['carrier'] + ' ' if pkg['carrier'] else ''}{pkg['tracking']}")
        return "\n".join(lines)

    async def deliver(self, record: Record) -> None:
        payload: Payload = record.payload  # type: ignore[assignment]
        order_id = (payload["order"]["cart_order_id"] or payload["order"]["number"]).strip()
        if not order_id.isdigit():
            raise Rejected(f"OpenCart needs the numeric order_id; order {payload['order']['number']!r} has none "
                           "(import it with cart_order_id).")
        label, previous = new_order_label(payload), payload["order"]["previous_label"]
        target = self.status_id(label) if label else None
        before = (self.ctx.mapped(previous) or "").strip() if previous else ""
        comment = self.comment(payload)
        if not (target or comment):
            return
        info = await self.api("api/order/info", "OpenCart order info", order_id)
        current = str((info.get("order") or {}).get("order_status_id") or "")
        if target and target != before:
            if current == target:
                return  # the status (and its comment) are there already
            status = target
        elif comment:
            status = current or target or ""  # no status change in OpenCart terms: send the comment only
        else:
            return
        if not status:
            raise Rejected(f"OpenCart order {order_id} has no status to keep while adding the comment.")
        form = {"order_status_id": status, "notify": "1", "override": "0", "comment": comment}
        await self.api("api/order/history", "OpenCart order history", order_id, form)


ADAPTER = OpenCartAdapter
