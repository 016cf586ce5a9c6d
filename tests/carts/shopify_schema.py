"""The part of Shopify's GraphQL Admin schema statusctl uses, and a small reader to check documents with.

SCHEMA holds the types, fields and arguments statusctl uses, as the 2026-07
Admin schema (introspected from a live shop, airhorns/shopify-draft-proxy
config/admin-graphql/2026-07/schema.graphql) and shopify.dev define them.
`check_document` lists what Shopify would refuse in a document; `project`
answers only the selected fields, as a GraphQL server does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CONN = ("first", "after", "last", "before", "reverse")
# type -> field -> (type of the field, its arguments; "!" marks a required one)
SCHEMA: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "QueryRoot": {"order": ("Order", ("id!",)), "nodes": ("Node", ("ids!",)), "shop": ("Shop", ())},
    "Mutation": {
        "fulfillmentCreate": ("FulfillmentCreatePayload", ("fulfillment!", "message")),
        "orderCancel": ("OrderCancelPayload", ("orderId!", "refund", "refundMethod", "restock!", "reason!",
                                               "notifyCustomer", "staffNote")),
        "tagsAdd": ("TagsAddPayload", ("id!", "tags!")),
    },
    "Shop": {"name": ("String", ()), "id": ("ID", ())},
    "Order": {"id": ("ID", ()), "name": ("String", ()), "cancelledAt": ("DateTime", ()), "tags": ("String", ()),
              "displayFulfillmentStatus": ("OrderDisplayFulfillmentStatus", ()),
              "fulfillments": ("Fulfillment", ("first", "query")),
              "fulfillmentOrders": ("FulfillmentOrderConnection", ("displayable", "query", *CONN))},
    "Fulfillment": {"id": ("ID", ()), "status": ("FulfillmentStatus", ()), "name": ("String", ()),
                    "trackingInfo": ("FulfillmentTrackingInfo", ("first",)),
                    "fulfillmentLineItems": ("FulfillmentLineItemConnection", CONN)},
    "FulfillmentTrackingInfo": {"number": ("String", ()), "company": ("String", ()), "url": ("URL", ())},
    "FulfillmentLineItemConnection": {"nodes": ("FulfillmentLineItem", ()), "pageInfo": ("PageInfo", ())},
    "FulfillmentLineItem": {"id": ("ID", ()), "quantity": ("Int", ()), "lineItem": ("LineItem", ())},
    "LineItem": {"id": ("ID", ()), "sku": ("String", ()), "quantity": ("Int", ())},
    "FulfillmentOrderConnection": {"nodes": ("FulfillmentOrder", ()), "pageInfo": ("PageInfo", ())},
    "FulfillmentOrder": {"id": ("ID", ()), "status": ("FulfillmentOrderStatus", ()),
                         "assignedLocation": ("FulfillmentOrderAssignedLocation", ()),
                         "lineItems": ("FulfillmentOrderLineItemConnection", CONN)},
    "FulfillmentOrderAssignedLocation": {"name": ("String", ()), "location": ("Location", ())},
    "Location": {"id": ("ID", ()), "name": ("String", ())},
    "FulfillmentOrderLineItemConnection": {"nodes": ("FulfillmentOrderLineItem", ()), "pageInfo": ("PageInfo", ())},
    "FulfillmentOrderLineItem": {"id": ("ID", ()), "remainingQuantity": ("Int", ()), "totalQuantity": ("Int", ()),
                                 "sku": ("String", ()), "lineItem": ("LineItem", ())},
    "PageInfo": {"hasNextPage": ("Boolean", ()), "endCursor": ("String", ())},
    "FulfillmentCreatePayload": {"fulfillment": ("Fulfillment", ()), "userErrors": ("UserError", ())},
    "UserError": {"field": ("String", ()), "message": ("String", ())},
    "OrderCancelPayload": {"job": ("Job", ()), "orderCancelUserErrors": ("OrderCancelUserError", ()),
                           "userErrors": ("UserError", ())},
    "OrderCancelUserError": {"code": ("OrderCancelUserErrorCode", ()), "field": ("String", ()),
                             "message": ("String", ())},
    "Job": {"id": ("ID", ()), "done": ("Boolean", ())},
    "TagsAddPayload": {"node": ("Node", ()), "userErrors": ("UserError", ())},
    "Node": {"id": ("ID", ())},
}
INPUTS: dict[str, dict[str, str]] = {  # input type -> field -> type ("!" required)
    "FulfillmentInput": {"trackingInfo": "FulfillmentTrackingInput", "notifyCustomer": "Boolean",
                         "lineItemsByFulfillmentOrder": "FulfillmentOrderLineItemsInput!",
                         "originAddress": "FulfillmentOriginAddressInput"},
    "FulfillmentTrackingInput": {"number": "String", "url": "URL", "company": "String", "numbers": "String",
                                 "urls": "URL"},
    "FulfillmentOrderLineItemsInput": {"fulfillmentOrderId": "ID!",
                                       "fulfillmentOrderLineItems": "FulfillmentOrderLineItemInput"},
    "FulfillmentOrderLineItemInput": {"id": "ID!", "quantity": "Int!"},
    "OrderCancelRefundMethodInput": {"originalPaymentMethodsRefund": "Boolean",
                                     "storeCreditRefund": "OrderCancelStoreCreditRefundInput"},
}
ENUMS = {"OrderCancelReason": {"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF"}}
SCALARS = {"ID", "String", "Boolean", "Int", "URL", "DateTime"}

# -- a small GraphQL reader: enough for the documents statusctl sends ---------------------------

_TOKEN = re.compile(r'\s+|#[^\n]*|,|(\.\.\.|[_A-Za-z]\w*|-?\d+(?:\.\d+)?|"(?:[^"\\]|\\.)*"|[{}()\[\]:!$=@])')


@dataclass
class Sel:
    name: str  # field name, or "... on Type" for an inline fragment
    args: dict[str, Any] = field(default_factory=dict)
    sels: list[Sel] = field(default_factory=list)
    on: str | None = None


@dataclass
class Operation:
    kind: str
    variables: dict[str, str]  # $name -> declared type, e.g. "[ID!]!"
    sels: list[Sel]


class Reader:
    def __init__(self, text: str) -> None:
        self.toks = [m.group(1) for m in _TOKEN.finditer(text) if m.group(1)]
        self.i = 0

    def take(self, want: str | None = None) -> str:
        tok = self.toks[self.i]
        if want is not None and tok != want:
            raise SyntaxError(f"expected {want!r}, found {tok!r}")
        self.i += 1
        return tok

    def peek(self) -> str:
        return self.toks[self.i] if self.i < len(self.toks) else ""

    def operation(self) -> Operation:
        kind, variables = "query", {}
        if self.peek() in ("query", "mutation"):
            kind = self.take()
            if self.peek() not in ("(", "{"):
                self.take()
            if self.peek() == "(":
                self.take("(")
                while self.peek() != ")":
                    self.take("$")
                    name = self.take()
                    self.take(":")
                    variables[name] = self.type_ref()
                self.take(")")
        return Operation(kind, variables, self.selections())

    def type_ref(self) -> str:
        if self.peek() == "[":
            self.take("[")
            inner = f"[{self.type_ref()}]"
            self.take("]")
        else:
            inner = self.take()
        return inner + (self.take("!") if self.peek() == "!" else "")

    def selections(self) -> list[Sel]:
        self.take("{")
        out = []
        while self.peek() != "}":
            if self.peek() == "...":
                self.take("...")
                self.take("on")
                on = self.take()
                out.append(Sel(f"... on {on}", sels=self.selections(), on=on))
                continue
            sel = Sel(self.take())
            if self.peek() == "(":
                self.take("(")
                while self.peek() != ")":
                    name = self.take()
                    self.take(":")
                    sel.args[name] = self.value()
                self.take(")")
            if self.peek() == "{":
                sel.sels = self.selections()
            out.append(sel)
        self.take("}")
        return out

    def value(self) -> Any:
        tok = self.take()
        if tok == "$":
            return ("$", self.take())
        if tok == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.take("]")
            return items
        if tok == "{":
            obj = {}
            while self.peek() != "}":
                key = self.take()
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        if tok.startswith('"'):
            return tok[1:-1]
        if tok[0].isdigit() or tok[0] == "-":
            return int(tok) if tok.lstrip("-").isdigit() else float(tok)
        return {"true": True, "false": False, "null": None}.get(tok, tok)


def parse(text: str) -> Operation:
    return Reader(text).operation()


def check_document(text: str, variables: dict[str, Any] | None = None) -> list[str]:
    """What Shopify would refuse in this document (and its variables); [] when it is valid."""
    try:
        op = parse(text)
    except (SyntaxError, IndexError) as exc:
        return [f"syntax error: {exc}"]
    problems: list[str] = []
    for name, decl in op.variables.items():
        base = decl.replace("[", "").replace("]", "").replace("!", "")
        if base not in SCALARS | INPUTS.keys() | ENUMS.keys():
            problems.append(f"Unknown type {base!r} for ${name}")
        if variables is not None and name in variables:
            problems += check_input(base, variables[name], f"${name}")
        elif variables is not None and decl.endswith("!"):
            problems.append(f"Variable ${name} of type {decl} was provided invalid value")

    def walk(parent: str, sels: list[Sel]) -> None:
        for sel in sels:
            if sel.on is not None:
                if sel.on not in SCHEMA:
                    problems.append(f"No such type {sel.on}")
                else:
                    walk(sel.on, sel.sels)
                continue
            spec = SCHEMA[parent].get(sel.name)
            if spec is None:
                problems.append(f"Field '{sel.name}' doesn't exist on type '{parent}'")
                continue
            kind, allowed = spec
            names = {a.rstrip("!") for a in allowed}
            problems.extend(f"Field '{sel.name}' doesn't accept argument '{a}'" for a in sel.args if a not in names)
            problems.extend(f"Field '{sel.name}' is missing required arguments: {a.rstrip('!')}"
                            for a in allowed if a.endswith("!") and a.rstrip("!") not in sel.args)
            for value in sel.args.values():
                if isinstance(value, tuple) and value[1] not in op.variables:
                    problems.append(f"Variable ${value[1]} is used but not declared")
            if kind in SCHEMA and not sel.sels:
                problems.append(f"Field must have selections ({kind} returned by {sel.name})")
            elif kind not in SCHEMA and sel.sels:
                problems.append(f"Selections can't be made on scalars ({sel.name} returns {kind})")
            elif kind in SCHEMA:
                walk(kind, sel.sels)

    walk("Mutation" if op.kind == "mutation" else "QueryRoot", op.sels)
    return problems


def check_input(kind: str, value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [p for v in value for p in check_input(kind, v, where)]
    if kind in ENUMS:
        return [] if value in ENUMS[kind] else [f"{where}: {value!r} is not a {kind}"]
    if kind not in INPUTS:
        return []
    if not isinstance(value, dict):
        return [f"{where}: expected a {kind} object"]
    spec = INPUTS[kind]
    problems = [f"{where}: {kind} has no field {k!r}" for k in value if k not in spec]
    for key, ftype in spec.items():
        if ftype.endswith("!") and value.get(key) is None:
            problems.append(f"{where}: {kind}.{key} is required")
        problems += check_input(ftype.rstrip("!"), value.get(key), f"{where}.{key}")
    return problems


def project(value: Any, sels: list[Sel], variables: dict[str, Any]) -> Any:
    """Only the selected fields of `value`, honouring `first`, as a GraphQL server answers."""
    if value is None or not sels:
        return value
    if isinstance(value, list):
        return [project(v, sels, variables) for v in value]
    out: dict[str, Any] = {}
    for sel in sels:
        if sel.on is not None:
            if value.get("__typename") == sel.on:
                out.update(project(value, sel.sels, variables))
            continue
        got = value.get(sel.name)
        first = sel.args.get("first")
        first = variables.get(first[1]) if isinstance(first, tuple) else first
        if isinstance(first, int) and isinstance(got, list):
            got = got[:first]
        elif isinstance(first, int) and isinstance(got, dict) and "nodes" in got:
            got = {"nodes": got["nodes"][:first], "pageInfo": {"hasNextPage": len(got["nodes"]) > first}}
        out[sel.name] = project(got, sel.sels, variables)
    return out
