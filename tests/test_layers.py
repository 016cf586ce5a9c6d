"""DESIGN.md §6: the layers read one way, each importing only the layers below it.

    domain    rules and data with no I/O (errors, carriers, the cart matrix, record payloads)
    storage   the database behind one interface (SQLite, PostgreSQL): every SQL statement
    core      the rules applied to stored data (labels, events, stores, orders, the change engine)
    carts     the cart adapters (HTTP only)
    delivery  the controller: claims from storage, sends through the carts, settles
    oss       the Order Status System (a face; the CLI starts it)
    cli       the commands

`STILL_ALLOWED` lists the imports that still go the wrong way while the move goes on; it may only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .helpers import ROOT

PACKAGE = ROOT / "statusctl"
RANK = {"domain": 0, "storage": 1, "core": 2, "carts": 3, "democart": 3, "delivery": 4, "oss": 5, "cli": 6}
# "module (relative to statusctl/)" -> the statusctl modules it may still import against the order
STILL_ALLOWED: dict[str, set[str]] = {}


def layer(module: str) -> str | None:
    """The layer of a dotted statusctl module name (None for statusctl itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "statusctl" else None


def statusctl_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "statusctl":
                found |= {f"statusctl.{a.name}" for a in node.names if a.name in RANK}
            elif node.module.startswith("statusctl."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("statusctl.")}
    return found


def violations() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        own = layer("statusctl." + rel.removesuffix(".py").replace("/", "."))
        if own not in RANK:
            continue
        for target in statusctl_imports(path):
            theirs = layer(target)
            if theirs in RANK and theirs != own and RANK[theirs] >= RANK[own]:
                out.setdefault(rel, set()).add(target)
    return out


def test_every_layer_imports_only_the_layers_below_it():
    extra = {m: sorted(t - STILL_ALLOWED.get(m, set())) for m, t in violations().items()}
    extra = {m: t for m, t in extra.items() if t}
    assert not extra, f"imports against the layer order (DESIGN.md §6): {extra}"


def test_the_allowed_list_only_shrinks():
    """An entry that no longer imports what it lists must leave STILL_ALLOWED."""
    found = violations()
    stale = {m: sorted(t - found.get(m, set())) for m, t in STILL_ALLOWED.items()}
    assert not {m: t for m, t in stale.items() if t}, f"remove from STILL_ALLOWED: {stale}"


def test_the_mapping_rules_and_the_webhook_secret_live_in_the_domain_once():
    from statusctl.carts import signing
    from statusctl.domain import mapvalues, webhooksecret

    assert signing.secret_bytes is webhooksecret.secret_bytes
    assert signing.SignatureError is webhooksecret.SignatureError
    assert not (ROOT / "statusctl" / "carts" / "mapvalues.py").exists()
    assert set(mapvalues.RULES) == {"woocommerce", "bigcommerce", "magento2", "shopify", "opencart", "prestashop"}
