"""DESIGN.md §6: the layers read one way, each importing only the layers below it.

    domain    rules and data with no I/O (errors, carriers, the cart matrix, record payloads)
    storage   the database behind one interface (SQLite, PostgreSQL): every SQL statement
    core      the rules applied to stored data (labels, events, stores, orders, the change engine)
    carts     the cart adapters (HTTP only)
    delivery  the controller: claims from storage, sends through the carts, settles
    oss       the Order Status System (a face; the CLI starts it)
    cli       the commands
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .helpers import ROOT

PACKAGE = ROOT / "statusctl"
RANK = {"domain": 0, "storage": 1, "core": 2, "carts": 3, "democart": 3, "delivery": 4, "oss": 5, "cli": 6}


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
    found = {m: sorted(t) for m, t in violations().items()}
    assert not found, f"imports against the layer order (DESIGN.md §6): {found}"


def test_the_layer_check_sees_an_import_upwards():
    assert layer("statusctl.delivery.controller") == "delivery" and RANK["storage"] < RANK["delivery"]
    assert statusctl_imports(PACKAGE / "delivery" / "controller.py") & {"statusctl.storage.backends"}


def test_the_mapping_rules_and_the_webhook_secret_live_in_the_domain_once():
    from statusctl.carts import signing
    from statusctl.domain import mapvalues, webhooksecret

    assert signing.secret_bytes is webhooksecret.secret_bytes
    assert signing.SignatureError is webhooksecret.SignatureError
    assert not (ROOT / "statusctl" / "carts" / "mapvalues.py").exists()
    assert set(mapvalues.RULES) == {"woocommerce", "bigcommerce", "magento2", "shopify", "opencart", "prestashop"}


# -- every SQL statement in storage (issue 14) ---------------------------------------------------

SQL_CALLS = {"execute", "executemany", "executescript"}
SQL_TEXT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE)\s")


def sql_outside_storage() -> dict[str, list[int]]:
    """Module -> the lines where it calls execute/executemany/executescript or holds a SQL statement."""
    found: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("storage/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS
            text = isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_TEXT.match(node.value)
            if call or text:
                found.setdefault(rel, []).append(node.lineno)
    return found


def test_no_module_outside_storage_runs_sql():
    found = sql_outside_storage()
    assert not found, f"SQL outside statusctl/storage/ (module: lines): {found}"


def test_the_sql_check_finds_a_statement_and_a_call():
    probe = "def f(conn):\n    return conn.execute('SELECT 1')\n"
    nodes = list(ast.walk(ast.parse(probe)))
    assert any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in SQL_CALLS for n in nodes)
    assert any(isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL_TEXT.match(n.value) for n in nodes)
    assert not SQL_TEXT.match("DELETE") and not SQL_TEXT.match("Update the label")


# -- small modules, short functions (issue 14) ---------------------------------------------------

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def too_long() -> set[str]:
    """Modules over MAX_MODULE_LINES lines (as `module`) and functions over MAX_FUNCTION_LINES (`module:name`)."""
    out = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            out.add(rel)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    out.add(f"{rel}:{node.name}")
    return out


def test_modules_are_small_and_functions_short():
    found = sorted(too_long())
    assert not found, f"over {MAX_MODULE_LINES} lines (module) or {MAX_FUNCTION_LINES} (module:function): {found}"
