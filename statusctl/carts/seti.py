"""seti: the Stone Edge generic cart protocol (a form POST to the cart's script, a text answer).

One record becomes one `setifunction=updatestatus` POST, in the delimited form
(`ordernumber`, `orderstatus`, `trackcount`, `tracknum[N]`, …) or, with store
option `xml=true`, as one `update` field holding an `<Orders><Order>…` document
that also carries item statuses and which item went in which package.

The answer is plain text with HTTP 200 either way; scripts differ in spelling,
so the parser accepts `SETIResponse: update=OK;Notes=`, `SETIResponse=OK;` and
`SETIRESPONSE: update=false;Notes=…` alike, with the reason in `Notes=` or
`Note=` (Stone Edge's own Magento 1 script writes the singular). Errors some
scripts raise before they reach the update are the cart's refusal too:
`SETIError: <reason>`, or an XML document whose root is `<SETIError>` (Interspire)
or whose `<Response>` has `ResponseCode` 3 (`<SETIOrders>`, Inroads); the reason
is the `ResponseDescription`, never the raw XML.

A status name the script does not know is, for real scripts, `update=OK` with
nothing changed (Inroads acts only on `Shipped`, MerchantTribe on its own names
such as `Complete`): `domain.labels.unmapped_labels()` lists the order labels
that would be sent by their own name, so `stores add`/`stores show`/`setup` say so.

check(): the protocol defines no "ping with credentials", but every public
script we read (MerchantTribe's StoneEdgeController, the Inroads PHP module and
a Haskell seed-shop server) authenticates `setifunction=ordercount` and answers
`SETIResponse: ordercount=N` without changing anything; `sendversion` is
harmless too but checks no credentials. So check() asks for the order count
with `lastorder=all` and `lastdate=all` (both: some scripts need one, some
both). A script that lacks `ordercount` answers with an error, which check()
reports as it is.

Caveat: resending is only as idempotent as the script. Setting a status twice
is harmless, but some scripts append the tracking numbers of each update to
the order (Inroads, MerchantTribe), and the protocol has no read of an order's
tracking that would let us check first.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from typing import cast

import httpx

from statusctl import __version__
from statusctl.carts import xmlsafe
from statusctl.carts.base import Adapter, Record, Rejected
from statusctl.domain.display import plural
from statusctl.domain.record import ItemPart, PackagePart, Payload

OMVERSION = f"statusctl-{__version__}"
_RESPONSE = re.compile(r"SETIResponse\s*[:=]?\s*", re.IGNORECASE)
_ERROR = re.compile(r"SETIError\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)
_XML_CODE = re.compile(r"<ResponseCode>\s*(\d+)\s*</ResponseCode>", re.IGNORECASE)
_XML_DESC = re.compile(r"<ResponseDescription>(.*?)</ResponseDescription>", re.IGNORECASE | re.DOTALL)
_NOTES = re.compile(r"(?<![a-z])notes?\s*=", re.IGNORECASE)  # `Notes=`, or `Note=` (Magento 1)


class SetiAnswer:
    """A parsed answer: the `key=value` fields after `SETIResponse`, the verdict, the notes."""

    def __init__(self, fields: dict[str, str], verdict: str | None, notes: str) -> None:
        self.fields = fields
        self.verdict = verdict
        self.notes = notes

    @property
    def ok(self) -> bool:
        return (self.verdict or "").strip().lower() in ("ok", "true")


def parse_answer(text: str) -> SetiAnswer | None:
    """Read a `SETIResponse…` answer in any of the spellings scripts use; None if there is none.

    The verdict is the value of `update=` or, in the short form (`SETIResponse=OK;`),
    the first bare word. `Notes=` runs to the end of the answer (reasons may hold `;`).
    """
    match = _RESPONSE.search(text)
    if match is None:
        return None
    rest = text[match.end():].strip()
    notes = ""
    found = _NOTES.search(rest)
    if found is not None:
        notes = rest[found.end():].strip()
        rest = rest[:found.start()]
    fields: dict[str, str] = {}
    verdict: str | None = None
    for part in rest.replace("\n", ";").split(";"):
        key, sep, value = part.strip().partition("=")
        if not key:
            continue
        if sep:
            fields[key.strip().lower()] = value.strip()
        elif verdict is None:
            verdict = key.strip()
    if "update" in fields:
        verdict = fields["update"]
    return SetiAnswer(fields, verdict, notes)


def script_error(text: str) -> str | None:
    """The reason of a script's error answer (`SETIError: …` or XML); None when it is none."""
    if text.lstrip().startswith("<"):
        return xml_error(text)
    match = _ERROR.search(text)
    if match is not None:
        return match.group(1).strip() or "no reason given"
    return None


def xml_error(text: str) -> str | None:
    """`<ResponseDescription> (ResponseCode N)` of an XML error answer; None when it is none.

    An error is a `<SETIError>` root, or a `<Response>` with ResponseCode 3. A document
    that is not well-formed is read with patterns, so a sloppy script's reason still shows.
    """
    try:
        root = xmlsafe.parse(text.strip())
    except xmlsafe.UnsafeXML:
        code_match, desc_match = _XML_CODE.search(text), _XML_DESC.search(text)
        code = code_match.group(1) if code_match else ""
        desc = html.unescape(desc_match.group(1)).strip() if desc_match else ""
        is_error = bool(re.search(r"<\s*SETIError\b", text, re.IGNORECASE))
    else:
        response = root if _local(root.tag) == "response" else next(
            (node for node in root.iter() if _local(node.tag) == "response"), None)
        code = _child_text(response, "responsecode")
        desc = _child_text(response, "responsedescription")
        is_error = _local(root.tag) == "setierror"
    if not (is_error or code == "3"):
        return None
    reason = desc or "no reason given"
    return f"{reason} (ResponseCode {code})" if code else reason


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _child_text(node: ET.Element | None, name: str) -> str:
    """The text of `node`'s child called `name` (any case), '' when there is none."""
    for child in node if node is not None else []:
        if _local(child.tag) == name:
            return "".join(child.itertext()).strip()
    return ""


def _day(stamp: str | None) -> str:
    """The date part of an ISO 8601 time (what scripts parse as a pickup date)."""
    return (stamp or "")[:10]


def _when(stamp: str) -> str:
    """ISO 8601 UTC as `YYYY-MM-DD HH:MM:SS`, which the scripts' date parsers accept."""
    return stamp.replace("T", " ").rstrip("Z")[:19]


class SetiAdapter(Adapter):
    cart = "seti"

    # -- what to send --------------------------------------------------------------------------

    def common_fields(self, function: str) -> dict[str, str]:
        user, password = self.ctx.require_secrets("user", "password")
        return {
            "setifunction": function,
            "setiuser": user,
            "password": password,
            "code": self.ctx.store.option("code"),
            "omversion": OMVERSION,
        }

    def status_value(self, label: str | None) -> str:
        """A label as the cart should see it: its `seti` mapping if it has one, else its name."""
        if not label:
            return ""
        return self.ctx.mapped(label) or label

    @staticmethod
    def order_number(payload: Payload) -> str:
        return payload["order"]["cart_order_id"] or payload["order"]["number"]

    @staticmethod
    def items_to_send(payload: Payload) -> list[ItemPart]:
        """Items whose label changed, and items in this record's packages."""
        packed = {pi["sku"] for pkg in payload["packages"] for pi in pkg["items"]}
        return [item for item in payload["items"] if item["changed"] or item["sku"] in packed]

    def detail_text(self, payload: Payload) -> str:
        """The note, then one line per changed item label (`orderdetail` / `Notes`)."""
        lines = [payload["note"]] if payload["note"] else []
        for item in payload["items"]:
            if item["changed"] and item["label"] != item["previous_label"]:
                before = self.status_value(item["previous_label"]) or "none"
                lines.append(
                    f"{item['sku']}: {before} -> {self.status_value(item['label']) or 'none'}"
                    f" ({item['shipped']} of {item['quantity']} shipped)"
                )
        return "\n".join(lines)

    def delimited_form(self, payload: Payload) -> dict[str, str]:
        """The delimited form. Packages without a tracking number add nothing a script can use."""
        form = self.common_fields("updatestatus")
        form.update({
            "ordernumber": self.order_number(payload),
            # When only items changed, the order keeps its label: send the current one.
            "orderstatus": self.status_value(payload["order"]["label"]),
            "refnumber": payload["order"]["number"],
            "orderdetail": self.detail_text(payload),
        })
        packages = [pkg for pkg in payload["packages"] if pkg["tracking"]]
        form["trackcount"] = str(len(packages))
        for n, pkg in enumerate(packages, start=1):
            suffix = "" if len(packages) == 1 else str(n)
            form[f"tracknum{suffix}"] = pkg["tracking"] or ""
            form[f"trackcarrier{suffix}"] = pkg["carrier"] or ""
            form[f"trackpickupdate{suffix}"] = _day(pkg["shipped_at"])
        return form

    @staticmethod
    def package_ids(packages: list[PackagePart]) -> list[str]:
        """Stable package ids within one record: the tracking number, else P<n>."""
        ids: list[str] = []
        for n, pkg in enumerate(packages, start=1):
            candidate = pkg["tracking"] or f"P{n}"
            ids.append(candidate if candidate not in ids else f"P{n}")
        return ids

    def xml_document(self, payload: Payload) -> str:
        """`<Orders><Order>…</Order></Orders>` built with ElementTree, so every value is escaped."""
        root = ET.Element("Orders")
        order = ET.SubElement(root, "Order")

        def add(parent: ET.Element, tag: str, text: str | int | None) -> ET.Element:
            child = ET.SubElement(parent, tag)
            child.text = "" if text is None else str(text)
            return child

        # Order-level elements come before Items: some scripts take the first <Status>/<TrackingID>.
        add(order, "OrderNumber", self.order_number(payload))
        add(order, "ReferenceNumber", payload["order"]["number"])
        add(order, "Status", self.status_value(payload["order"]["label"]))
        add(order, "Notes", self.detail_text(payload))
        add(order, "Comments", payload["note"])
        add(order, "ChangeDateTime", _when(payload["changed_at"]))
        ids = self.package_ids(payload["packages"])
        packages = ET.SubElement(order, "Packages")
        for pkg_id, pkg in zip(ids, payload["packages"], strict=True):
            node = ET.SubElement(packages, "Package")
            add(node, "PackageID", pkg_id)
            add(node, "TrackingID", pkg["tracking"])
            add(node, "TrackNum", pkg["tracking"])  # some scripts read this name instead
            add(node, "PickupDate", _day(pkg["shipped_at"]))
            add(node, "Shipper", pkg["carrier"])
            add(node, "Method", pkg["carrier"])
        items = ET.SubElement(order, "Items")
        for item in self.items_to_send(payload):
            node = ET.SubElement(items, "Item")
            add(node, "ItemNumber", item["cart_line_id"] or item["sku"])
            add(node, "RefNumber", item["sku"])
            add(node, "Status", self.status_value(item["label"]))
            add(node, "Ordered", item["quantity"])
            add(node, "Shipped", item["shipped"])
            add(node, "Needed", 0 if item["cancelled"] else max(0, item["quantity"] - item["shipped"]))
            item_packages = ET.SubElement(node, "Packages")
            for pkg_id, pkg in zip(ids, payload["packages"], strict=True):
                for part in pkg["items"]:
                    if part["sku"] == item["sku"]:
                        ref = ET.SubElement(item_packages, "Package")
                        add(ref, "PackageID", pkg_id)
                        add(ref, "Quantity", part["quantity"])
        return ET.tostring(root, encoding="unicode")

    def update_form(self, payload: Payload) -> dict[str, str]:
        if self.ctx.store.flag("xml"):
            form = self.common_fields("updatestatus")
            form["update"] = self.xml_document(payload)
            return form
        return self.delimited_form(payload)

    # -- sending and judging ---------------------------------------------------------------------

    async def post(self, form: dict[str, str]) -> httpx.Response:
        """POST a form to the script; non-2xx by the common rules."""
        response = await self.request("POST", self.ctx.store.url, data=form)
        self.judge(response)
        return response

    def refuse(self, reason: str, text: str) -> Rejected:
        return Rejected(self.ctx.scrub(reason)[:300], status=200, answer=self.ctx.excerpt(text))

    async def deliver(self, record: Record) -> int:
        payload = cast(Payload, record.payload)
        response = await self.post(self.update_form(payload))
        text = response.text
        answer = parse_answer(text)
        if answer is None:
            error = script_error(text)
            if error is not None:
                raise self.refuse(f"The cart script refused the update: {error}", text)
            raise self.refuse(f"The cart script sent a malformed answer: {self.ctx.excerpt(text)[:120]!r}", text)
        if answer.verdict is None:
            raise self.refuse(f"The cart script sent a malformed answer: {self.ctx.excerpt(text)[:120]!r}", text)
        if not answer.ok:
            raise self.refuse(
                f"The cart refused the update: {answer.notes or 'no reason given'}"
                f" (update={answer.verdict})",
                text,
            )
        return response.status_code

    async def check(self) -> str:
        form = self.common_fields("ordercount")
        form.update({"lastorder": "all", "lastdate": "all"})
        text = (await self.post(form)).text
        answer = parse_answer(text)
        if answer is not None and "ordercount" in answer.fields:
            return f"credentials accepted; the cart script reports {plural(answer.fields['ordercount'], 'order')}"
        error = script_error(text)
        if error is not None:
            raise self.refuse(f"The cart script refused the order count: {error}", text)
        if answer is not None and answer.verdict is not None and not answer.ok:
            raise self.refuse(f"The cart script refused the order count: {answer.notes or answer.verdict}", text)
        raise self.refuse(f"The cart script sent a malformed answer: {self.ctx.excerpt(text)[:120]!r}", text)


ADAPTER = SetiAdapter
