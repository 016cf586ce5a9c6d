"""DESIGN.md §6: the layers read one way. `core/` imports nothing from `carts/` but what is listed
here, the debt DESIGN.md names (the cart matrix, the controller and the probe), until that step."""

from __future__ import annotations

import ast
from pathlib import Path

from .helpers import ROOT

CORE = ROOT / "statusctl" / "core"
# module of core -> the carts modules it may still import (DESIGN.md §6, "Today core/ imports carts/")
STILL_ALLOWED = {
    "labels.py": {"statusctl.carts.matrix"},
    "stores.py": {"statusctl.carts.matrix"},
    "wizard.py": {"statusctl.carts.matrix"},
    "controller.py": {"statusctl.carts.base"},
    "destinations.py": {"statusctl.carts.base"},  # the controller's per-store state, split out of controller.py
    "probe.py": {"statusctl.carts.base"},
}


def carts_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names[:1] if n == "statusctl.carts" or n.startswith("statusctl.carts.")}
        if names[:1] == ["statusctl"]:
            found |= {n for n in names[1:] if n == "statusctl.carts"}
    return found


def test_core_imports_from_carts_only_what_design_md_still_lists():
    for path in sorted(CORE.glob("*.py")):
        extra = carts_imports(path) - STILL_ALLOWED.get(path.name, set())
        assert not extra, f"core/{path.name} imports {sorted(extra)}: move what it needs down into core"


def test_the_mapping_rules_and_the_webhook_secret_live_in_core_once():
    from statusctl.carts import signing
    from statusctl.core import mapvalues, webhooksecret

    assert signing.secret_bytes is webhooksecret.secret_bytes
    assert signing.SignatureError is webhooksecret.SignatureError
    assert not (ROOT / "statusctl" / "carts" / "mapvalues.py").exists()
    assert set(mapvalues.RULES) == {"woocommerce", "bigcommerce", "magento2", "shopify", "opencart", "prestashop"}
