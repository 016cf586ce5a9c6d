"""opencart: the OpenCart 3.0 catalog API (`index.php?route=api/…`, form posts, JSON answers).

What a real OpenCart 3.0.5.0 answers (tests/real/ runs statusctl against one):

- `api/login` (form `username`, `key`) opens an API session and answers its id
  as `api_token`. A wrong username or key gets `[]` (every 3.0 release). The
  right key from an IP missing from the API user's list gets
  `{"error": {"ip": "Warning: Your IP … is not allowed …", "key": "Warning:
  Incorrect API Key!"}}`: the `key` part comes with every IP refusal and is
  not shown.
- A call whose session ended (its data after PHP's `session.gc_maxlifetime`,
  1,440 s idle by default; its `oc_api_session` row after an hour) or that
  comes from another IP gets `{"error": "Warning: You do not have permission
  to access the API!"}`. Only that answer makes statusctl log in again and
  repeat the call (once: OpenCart did nothing); a token idle for 20 minutes is
  renewed before use. Any other `{"error": "…"}` (HTTP 200, such as "Warning:
  Order could not be found!") fails the record at once.
- With its database down OpenCart answers HTTP 500 with an empty body: retried.

A record becomes one `api/order/history&order_id=N` post (`order_status_id`,
`notify=1`, `override=0`, `comment` with the note and one `Tracking:` line per
package; the customer e-mail carries the comment, and OpenCart stores it
HTML-escaped). `api/order/info` is read first: when the label's status equals
the previous label's (Processing → Partially Shipped) the order keeps its
current status; a status the order already has (set by a payment extension or
the merchant) still gets the comment. Nothing is posted when there is neither
a status change nor a comment.

Resends: the API has no read of the history, so an earlier attempt's entry is
recognised from `api/order/info`. On a resend (an earlier claim of the record
may have reached OpenCart: an attempt that ended, or one a crash cut short), when the order
already has the status the entry would set and OpenCart changed the order
(`date_modified`, in the shop's time zone: store option `timezone`, default
UTC like OpenCart's) at or after the record was queued, the entry is taken as
made and nothing is posted: a crash or timeout mid-post leaves one entry, not
two. The price: when the earlier attempts never reached OpenCart and something
else changed the order after the record was queued, the resend adds nothing.
A record's first send always posts.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from statusctl.carts.base import Adapter, Context, Record, Rejected
from statusctl.carts.jsonbody import decode
from statusctl.carts.mapping import read_mapping
from statusctl.domain import mapvalues
from statusctl.domain.record import Payload, new_order_label

IDLE_S = 1200.0  # renew a kept token idle this long (PHP drops session data after 1,440 s idle by default)
SKEW_S = 30.0  # how far the shop's database clock may be behind ours when times are compared
SESSION_ENDED = "permission to access the api"  # OpenCart's answer to a token whose session ended


def error_of(body: Any) -> str | None:
    """The error text of an answer, None when it reports no error."""
    if isinstance(body, dict) and body.get("error"):
        err = body["error"]
        if isinstance(err, dict):
            if err.get("ip"):
                return str(err["ip"])  # its "Incorrect API Key!" sibling comes with every IP refusal
            return "; ".join(str(v) for v in err.values())
        return str(err)
    return None


class OpenCartAdapter(Adapter):
    cart = "opencart"

    def __init__(self, client: httpx.AsyncClient, ctx: Context) -> None:
        super().__init__(client, ctx)
        self._token: str | None = None
        self._used = 0.0

    def endpoint(self) -> str:
        return f"{self.ctx.store.url.rstrip('/')}/index.php"

    async def post(self, route: str, what: str, form: dict[str, str], **query: str) -> tuple[int, Any]:
        """One form post; its HTTP status and decoded JSON (non-2xx raise as for every cart)."""
        response = await self.request("POST", self.endpoint(), params={"route": route, **query}, data=form,
                                      headers={"Accept": "application/json"})
        self.judge(response, what)
        body = decode(response.text)
        if body is None:
            raise Rejected(f"{what}: OpenCart did not answer JSON.", status=response.status_code,
                           answer=self.ctx.excerpt(response.text))
        return response.status_code, body

    async def login(self) -> str:
        username, key = self.ctx.require_secrets("username", "key")
        status, body = await self.post("api/login", "OpenCart API login", {"username": username, "key": key})
        token = body.get("api_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            problem = error_of(body) or "wrong API username or key (OpenCart answered [])"
            refused_ip = isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("ip")
            hint = " Add this machine's IP to the API user in System > Users > API." if refused_ip else ""
            # The reason quotes an IP refusal whole; its answer would repeat the misleading "Incorrect API Key!".
            raise Rejected(f"OpenCart refused the API login: {self.ctx.scrub(problem).rstrip('.!')}.{hint}",
                           status=status, answer="" if refused_ip else self.ctx.excerpt(json.dumps(body)))
        self.ctx.add_secret("api_token", token)
        self._token, self._used = token, time.monotonic()
        return token

    async def api(self, route: str, what: str, order_id: str,
                  form: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """One call with the session token; logs in again and repeats only when the session has ended."""
        kept = self._token if self._token and time.monotonic() - self._used < IDLE_S else None
        status, body = await self.post(route, what, form or {}, api_token=kept or await self.login(),
                                       order_id=order_id)
        problem = error_of(body)
        if kept and problem and SESSION_ENDED in problem.lower():
            status, body = await self.post(route, what, form or {}, api_token=await self.login(),
                                           order_id=order_id)
            problem = error_of(body)
        self._used = time.monotonic()
        if problem or not isinstance(body, dict):
            raise Rejected(f"{what}: OpenCart answered: {self.ctx.scrub(problem or 'no result')}", status=status,
                           answer=self.ctx.excerpt(json.dumps(body)))
        return status, body

    async def check(self) -> str:
        self.shop_zone()
        await self.login()
        return "OpenCart accepted the API login (username, key and this machine's IP)"

    def status_id(self, label: str) -> str:
        return read_mapping(mapvalues.opencart, label, self.ctx.require_mapping(label))

    def shop_zone(self) -> tzinfo:
        name = self.ctx.store.option("timezone", "UTC").strip()
        if name.upper() in ("UTC", "GMT"):
            return timezone.utc
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise Rejected(f"Store {self.ctx.store.name!r}: option timezone {name!r} is not a time zone name such "
                           "as Europe/Berlin (OpenCart: System > Settings > Local > Time Zone).") from None

    def changed_since_queued(self, order: dict[str, Any], record: Record) -> bool:
        """Whether OpenCart changed the order at or after the record was queued (unknown counts as yes)."""
        try:
            when = datetime.strptime(str(order.get("date_modified")), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return True
        seconds = when.replace(tzinfo=self.shop_zone()).timestamp()
        return seconds + 1 >= record.queued - SKEW_S  # + 1: OpenCart keeps whole seconds

    @staticmethod
    def comment(payload: Payload) -> str:
        lines = [payload["note"].strip()] if payload["note"] and payload["note"].strip() else []
        for pkg in payload["packages"]:
            if pkg["tracking"]:
                lines.append(f"Tracking: {pkg['carrier'] + ' ' if pkg['carrier'] else ''}{pkg['tracking']}")
        return "\n".join(lines)

    async def deliver(self, record: Record) -> int | None:
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
            return None
        code, info = await self.api("api/order/info", "OpenCart order info", order_id)
        found = info.get("order")
        order: dict[str, Any] = found if isinstance(found, dict) else {}
        current = str(order.get("order_status_id") or "")
        status = target if target and target != before else current  # same status in OpenCart terms: keep it
        if not status:
            raise Rejected(f"OpenCart order {order_id} has no status to keep while adding the comment.")
        if status == current and not comment:
            return code  # the order has that status and there is nothing to say
        if status == current and record.resend and self.changed_since_queued(order, record):
            return code  # an earlier attempt's entry is there (module notes: resends)
        form = {"order_status_id": status, "notify": "1", "override": "0", "comment": comment}
        code, _ = await self.api("api/order/history", "OpenCart order history", order_id, form)
        return code


ADAPTER = OpenCartAdapter
