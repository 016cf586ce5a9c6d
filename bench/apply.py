"""Bulk apply against its floor: plain sqlite3 doing the same writes, measured in the same run.

    python bench/apply.py [--orders 20000] [--items 5] [--no-cli]

Builds a database in a temporary directory through the project's own import
path (an orders CSV generated here, `import_orders`), with UseStatusUpdates
true and a webhook store, then writes an apply CSV that ships every item once,
one row per item, each row with its own tracking number: every row fires
item-shipped and order-partially-shipped or order-shipped; each order gets
one record carrying its five rows (five packages). The 100,000-row apply is timed on fresh copies of that database:

- core: `statusctl.core.actions.apply_file` (reading, validating, applying);
- cli: `statusctl --db COPY apply FILE` as a subprocess (start-up included;
  the console script, with compiled bytecode as installed);
- floor: plain sqlite3 on another copy, one `BEGIN IMMEDIATE` transaction,
  executemany of the same item updates, order label updates, label_history
  rows and stack rows (taken from the core run's result, so same columns and
  same payload sizes), then COMMIT, with statusctl's own pragmas.

The ratio is floor seconds / core seconds: 1.0 would mean the domain logic
costs nothing over the bare writes. Goal: ratio >= 0.3 and the core apply of
100,000 rows under 5 s. CPU seconds are printed too (and their ratio): on a
machine shared with other work they move less than wall time does.

On PostgreSQL too (`--backends sqlite,postgresql`, the default where PostgreSQL
can be had: a throwaway cluster, bench/pgrun.py): the same base built the same
way in a database of its own, each run on a copy of it (CREATE DATABASE ...
TEMPLATE), the same core and cli applies, and a floor of plain psycopg doing the
same writes (executemany, which psycopg pipelines) in one transaction. Goal:
the core apply's rate on PostgreSQL >= 0.5 x SQLite's. Its CPU seconds are the
client's only (the server's are its own processes'). The output says what a
commit waits for on each side (the test cluster runs without fsync).

    python bench/apply.py [--orders 20000] [--items 5] [--no-cli] [--backends sqlite,postgresql] [--pg-durable]
"""

from __future__ import annotations

import argparse
import base64
import csv
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pgrun  # noqa: E402

from statusctl.core.actions import apply_file  # noqa: E402
from statusctl.core.init import ensure_initialized  # noqa: E402
from statusctl.core.orders import import_orders  # noqa: E402
from statusctl.core.settings import set_value  # noqa: E402
from statusctl.core.stores import add_store  # noqa: E402
from statusctl.storage.backends import Target, open_database  # noqa: E402
from statusctl.storage.db import Database  # noqa: E402

STORE = "bench-hook"


def write_orders(path: Path, orders: int, items: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order_number", "order_date", "customer_name", "customer_email", "ship_postal_code",
                    "sku", "name", "quantity", "cart_order_id", "cart_line_id"])
        for o in range(orders):
            number = f"B{o + 100000}"
            for i in range(items):
                w.writerow([number, "2026-11-20", f"Customer {o}", f"c{o}@example.com", f"{10000 + o % 90000}",
                            f"SKU-{i + 1}", f"Product number {i + 1}", 1 + i % 2, f"co{o}", f"cl{o}-{i}"])


def write_apply(path: Path, orders: int, items: int) -> int:
    """Each row ships all of one item (quantity 1 + i % 2) in its own package."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["action", "event", "order", "sku", "quantity", "tracking", "carrier", "note"])
        for o in range(orders):
            for i in range(items):
                w.writerow(["ship", "", f"B{o + 100000}", f"SKU-{i + 1}", 1 + i % 2,
                            f"1Z{o:08d}{i:02d}X", "UPS", ""])
                rows += 1
    return rows


def build_base(work: Path, orders: int, items: int, pg: pgrun.PgBench | None = None) -> tuple[Target, float]:
    """The database every run copies: the store, the setting and the imported orders (on `pg`: a database there)."""
    base: Target = pg.new("applybase") if pg else work / "base.db"
    db = open_database(base, create=True)
    ensure_initialized(db)
    set_value(db, "UseStatusUpdates", "true")
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    add_store(db, STORE, "webhook", "http://127.0.0.1:9/hook", [f"secret={secret}"], [], [])
    orders_csv = work / "orders.csv"
    if not orders_csv.exists():
        write_orders(orders_csv, orders, items)
    started = time.perf_counter()
    import_orders(db, orders_csv, STORE)
    took = time.perf_counter() - started
    if pg:
        with db.tx() as conn:
            conn.execute("ANALYZE")  # what the planner knows of the tables once a shop has run a while
    else:
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return base, took


def fresh_copy(base: Path, name: str) -> Path:
    target = base.with_name(name)
    shutil.copyfile(base, target)
    return target


Copier = Callable[[str], Target]  # a fresh copy of the base database, by name


def run_core(copy: Copier, apply_csv: Path) -> tuple[float, float, Target]:
    """Wall and CPU seconds of apply_file on a fresh copy; the copy is kept for the floor."""
    path = copy("core.db")
    db = open_database(path)
    started, cpu = time.perf_counter(), time.process_time()
    summary = apply_file(db, apply_csv)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    print(f"  core summary: rows={summary.rows} orders={summary.orders} labels changed={summary.labels_changed} "
          f"records={summary.records}")
    return took, cpu, path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(copy: Copier, apply_csv: Path) -> tuple[float, float]:
    path = copy("cli.db")
    script = Path(sys.executable).with_name("statusctl")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "statusctl"]
    # Compiled bytecode, as installed: a pycache of our own (PYTHONDONTWRITEBYTECODE may be set).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(apply_csv.with_name("pycache"))
    # Warm-up (it compiles what the apply imports): the first 50 rows on another copy.
    small = apply_csv.with_name("apply-small.csv")
    small.write_text("".join(apply_csv.read_text(encoding="utf-8").splitlines(keepends=True)[:51]), encoding="utf-8")
    subprocess.run([*cli, "--db", str(copy("warm.db")), "apply", str(small)],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([*cli, "--db", str(path), "apply", str(apply_csv)], check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started, _children_cpu() - cpu


def floor_writes(conn: Any, base: Any) -> dict[str, list[tuple[object, ...]]]:
    """The rows the apply wrote, read back from its database (`conn`, sqlite3 or psycopg), for plain executemany."""
    old_items = {r[0]: r[1] for r in base.execute("SELECT id, label FROM items")}
    writes = {
        "items": [(label, shipped, cancelled, iid) for iid, label, shipped, cancelled
                  in conn.execute("SELECT id, label, shipped, cancelled FROM items")
                  if label != old_items.get(iid)],
        # One UPDATE per order label change (the apply may fold several changes of one order into one).
        "orders": [(to, oid) for oid, to in
                   conn.execute("SELECT order_id, to_label FROM label_history WHERE item_id IS NULL AND event != 'order-imported'")],
        "history": list(conn.execute(
            "SELECT at, order_id, item_id, event, from_label, to_label FROM label_history WHERE event != 'order-imported'")),
        "stack": list(conn.execute(
            "SELECT uid, order_id, order_number, store, destination, payload, queued, next_attempt FROM stack")),
    }
    conn.close()
    base.close()
    return writes


FLOOR = (
    ("items", "UPDATE items SET label = ?, shipped = ?, cancelled = ? WHERE id = ?"),
    ("orders", "UPDATE orders SET label = ? WHERE id = ?"),
    ("history", "INSERT INTO label_history (at, order_id, item_id, event, from_label, to_label) VALUES (?, ?, ?, ?, ?, ?)"),
    ("stack", "INSERT INTO stack (uid, order_id, order_number, store, destination, payload, queued, next_attempt) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
)


def run_floor(base: Path, writes: dict[str, list[tuple[object, ...]]]) -> tuple[float, float]:
    path = fresh_copy(base, "floor.db")
    db = Database.open(path)  # the same pragmas: WAL, synchronous FULL, foreign keys
    c = db.conn
    started, cpu = time.perf_counter(), time.process_time()
    c.execute("BEGIN IMMEDIATE")
    for table, sql in FLOOR:
        c.executemany(sql, writes[table])
    c.execute("COMMIT")
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    return took, cpu


def run_floor_pg(pg: pgrun.PgBench, base: str, writes: dict[str, list[tuple[object, ...]]]) -> tuple[float, float]:
    """The floor on PostgreSQL: plain psycopg, one transaction, executemany (pipelined by psycopg)."""
    conn = pg.connect(pg.copy(base, "floor"))
    started, cpu = time.perf_counter(), time.process_time()
    with conn.cursor() as cur:
        for table, sql in FLOOR:
            cur.executemany(sql.replace("?", "%s"), writes[table])
    conn.commit()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return took, cpu


def one_backend(work: Path, args: argparse.Namespace, apply_csv: Path, rows: int,
                pg: pgrun.PgBench | None) -> float:
    """The core, cli and floor runs on one backend, printed; the core apply's seconds."""
    base, import_s = build_base(work, args.orders, args.items, pg)
    copy: Copier = (lambda name: pg.copy(str(base), name.split(".")[0])) if pg else (
        lambda name: fresh_copy(Path(base), name))
    where = "" if pg is None else " on PostgreSQL"
    print(f"{args.orders} orders x {args.items} items imported{where} in {import_s:.2f} s; apply of {rows} ship rows")
    core_s, core_cpu, applied = run_core(copy, apply_csv)
    if pg:
        writes = floor_writes(pg.connect(str(applied)), pg.connect(str(base)))
        floor_s, floor_cpu = run_floor_pg(pg, str(base), writes)
    else:
        writes = floor_writes(sqlite3.connect(applied), sqlite3.connect(base))
        floor_s, floor_cpu = run_floor(Path(base), writes)
    print(f"  floor writes: items={len(writes['items'])} orders={len(writes['orders'])} "
          f"history={len(writes['history'])} stack={len(writes['stack'])}")
    client = "; the client's" if pg else ""
    print(f"core apply : {core_s:6.2f} s  {rows / core_s:9,.0f} rows/s  (cpu {core_cpu:5.2f} s{client})")
    if not args.no_cli:
        cli_s, cli_cpu = run_cli(copy, apply_csv)
        print(f"cli apply  : {cli_s:6.2f} s  {rows / cli_s:9,.0f} rows/s  (cpu {cli_cpu:5.2f} s; "
              "subprocess, start-up included)")
    yardstick = "plain psycopg executemany (pipelined)" if pg else "plain sqlite3 executemany"
    print(f"floor      : {floor_s:6.2f} s  {rows / floor_s:9,.0f} rows/s  (cpu {floor_cpu:5.2f} s; "
          f"{yardstick}, one transaction)")
    ratio = floor_s / core_s
    verdict = "ok" if ratio >= 0.3 and core_s < 5 else "BELOW GOAL"
    print(f"ratio floor/core: {ratio:.2f}  (cpu {floor_cpu / core_cpu:.2f}; goal >= 0.30 and core < 5 s: {verdict})")
    return core_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--no-cli", action="store_true", help="skip the apply through the CLI subprocess")
    pgrun.add_arguments(parser)
    args = parser.parse_args()
    wanted = pgrun.backends(args)
    with tempfile.TemporaryDirectory(prefix="statusctl-bench-") as tmp, pgrun.started(wanted, durable=args.pg_durable) as pg:
        work = Path(tmp)
        apply_csv = work / "apply.csv"
        rows = write_apply(apply_csv, args.orders, args.items)
        core = {}
        for name in wanted:
            if name == pgrun.POSTGRESQL:
                assert pg is not None
                print(f"\nPostgreSQL ({pg.durability()})")
            core[name] = one_backend(work, args, apply_csv, rows, pg if name == pgrun.POSTGRESQL else None)
        if len(core) == 2:
            ratio = core[pgrun.SQLITE] / core[pgrun.POSTGRESQL]
            print(f"\ncore apply rate, PostgreSQL / SQLite: {ratio:.2f}  (goal >= 0.50: {'ok' if ratio >= 0.5 else 'NOT MET'})")
        print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (on {os.cpu_count()} cpus)")


if __name__ == "__main__":
    main()
