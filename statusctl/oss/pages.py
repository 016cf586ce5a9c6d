"""The customer's HTML pages. Every value from an update passes through `esc`; only the
merchant's own header and footer files are inserted as they are."""

from __future__ import annotations

import html
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from statusctl.domain.carriers import carrier_name, tracking_url
from statusctl.domain.record import ItemPart, PackageItem
from statusctl.oss.store import Entry, OrderView, Package
from statusctl.oss.validate import moment

NOT_FOUND = "We could not find an order with that number and postal code. Please check both and try again."


def esc(value: object) -> str:
    """HTML-escape text for element content and quoted attributes."""
    return html.escape(str(value), quote=True)


def zone(name: str | None) -> tzinfo:
    """The customer's time zone (an IANA name such as 'Europe/London'), else UTC."""
    if name and len(name) < 64 and ".." not in name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return timezone.utc


def when(at: datetime, tz: tzinfo) -> str:
    """A time in the customer's zone; in its own offset if that zone cannot show it (the calendar's ends)."""
    try:
        local = at.astimezone(tz)
    except OverflowError:  # refused at the update since; a database from before may hold one
        local = at
    return local.strftime("%a %d %b %Y, %H:%M ") + (local.tzname() or "UTC")


def _when_text(text: str, tz: tzinfo) -> str:
    """An ISO date or date-time from an update, shown in the customer's zone when it has a time."""
    at = moment(text)
    if isinstance(at, datetime):
        return when(at if at.tzinfo else at.replace(tzinfo=timezone.utc), tz)
    return at.strftime("%d %b %Y") if at else text


class Page:
    """The merchant's frame around every page."""

    def __init__(self, header_html: str, footer_html: str, title: str) -> None:
        self.header_html = header_html
        self.footer_html = footer_html
        self.title = title

    def render(self, heading: str, body: str, *, status: bool = False) -> str:
        marker = " data-oss-status" if status else ""
        return (
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            f"<title>{esc(heading if heading == self.title else f'{heading} · {self.title}')}</title>"
            '<link rel="stylesheet" href="/static/oss.css">'
            '<script src="/static/oss.js" defer></script></head><body>'
            f'<div class="oss-header">{self.header_html}</div>'
            f'<main class="oss"{marker}>{body}</main>'
            f'<div class="oss-footer">{self.footer_html}</div></body></html>\n'
        )

    def lookup(self, *, message: str | None = None, number: str = "") -> str:
        notice = f'<p class="notice" role="alert">{esc(message)}</p>' if message else ""
        body = (
            f"<h1>{esc(self.title)}</h1>{notice}"
            '<form method="post" action="/lookup">'
            '<label>Order number <input name="number" required maxlength="100" autocomplete="off"'
            f' value="{esc(number)}"></label>'
            '<label>ZIP / postal code <input name="postal" required maxlength="40"'
            ' autocomplete="postal-code"></label>'
            '<input type="hidden" name="tz" value="">'
            '<button type="submit">Show order status</button></form>'
        )
        return self.render(self.title, body)

    def message(self, heading: str, text: str) -> str:
        body = f'<h1>{esc(heading)}</h1><p class="notice" role="alert">{esc(text)}</p>'
        return self.render(heading, body + '<p><a href="/">Look up an order</a></p>')

    def status(self, view: OrderView, tz_name: str | None) -> str:
        tz = zone(tz_name)
        names = {item["sku"]: item["name"] for item in view.items}
        placed = f"Placed {esc(_when_text(view.date, tz))} · " if view.date else ""
        body = [
            f'<h1>Order <span id="order-number">{esc(view.number)}</span></h1>',
            f'<p class="status">Status: <strong id="order-label">{esc(view.label or "In progress")}</strong></p>',
            f'<p class="muted">{placed}Updated {esc(when(view.changed_at, tz))}</p>',
            '<h2>Items</h2><ul class="items">',
            *(_item(item) for item in view.items),
            "</ul>",
        ]
        if view.packages:
            body += ['<h2>Packages</h2><ul class="packages">']
            body += [_package(pkg, names, tz) for pkg in view.packages]
            body += ["</ul>"]
        body += ['<h2>History</h2><ol class="timeline">']
        body += [_entry(entry, names, tz) for entry in view.history]
        body += ["</ol>", '<p><a href="/">Look up another order</a></p>']
        return self.render(f"Order {view.number}", "".join(body), status=True)


def _item(item: ItemPart) -> str:
    counts = [f"Qty {item['quantity']}"]
    if item["shipped"]:
        counts.append(f"{item['shipped']} shipped")
    if item["cancelled"]:
        counts.append("cancelled")
    label = f' <span class="badge">{esc(item["label"])}</span>' if item["label"] else ""
    return (
        f'<li class="item"><strong>{esc(item["name"])}</strong>{label}'
        f'<br><span class="muted">{esc(" · ".join(counts))} · SKU {esc(item["sku"])}</span></li>'
    )


def tracking_html(carrier: str | None, tracking: str | None) -> str:
    """'UPS <a …>1Z…</a>': linked for the carriers we know, plain text otherwise."""
    name = esc(carrier_name(carrier) or "Carrier")
    if not tracking:
        return name
    url = tracking_url(carrier, tracking)
    if url is None:
        return f'{name} <span class="tracking">{esc(tracking)}</span>'
    return (
        f'{name} <a class="tracking" href="{esc(url)}" target="_blank"'
        f' rel="noopener noreferrer">{esc(tracking)}</a>'
    )


def _contents(items: list[PackageItem], names: dict[str, str]) -> str:
    return ", ".join(f"{i['quantity']} × {names.get(i['sku'], i['sku'])}" for i in items)


def _package(pkg: Package, names: dict[str, str], tz: tzinfo) -> str:
    contents = _contents(pkg.items, names)
    return (
        f'<li class="package">{tracking_html(pkg.carrier, pkg.tracking)}'
        f'<br><span class="muted">Shipped {esc(_when_text(pkg.shipped_at, tz))}'
        + (f" · {esc(contents)}" if contents else "")
        + "</span></li>"
    )


def _entry(entry: Entry, names: dict[str, str], tz: tzinfo) -> str:
    lines = []
    if entry.order_changed and entry.order_label:
        lines.append(f"<strong>{esc(entry.order_label)}</strong>")
    for item in entry.items:
        if item["label"]:
            lines.append(f"{esc(item['name'])}: {esc(item['label'])}")
    for pkg in entry.packages:
        contents = _contents(pkg["items"], names)
        lines.append(
            f"Shipped with {tracking_html(pkg['carrier'], pkg['tracking'])}"
            + (f" ({esc(contents)})" if contents else "")
        )
    if entry.note:
        lines.append(f'<span class="note">{esc(entry.note)}</span>')
    if not lines:
        lines.append("Order updated")
    stamp = entry.changed_at.isoformat()
    return f'<li><time datetime="{esc(stamp)}">{esc(when(entry.changed_at, tz))}</time>{"<br>".join(lines)}</li>'
