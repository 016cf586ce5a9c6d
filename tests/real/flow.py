"""statusctl driven as a user drives it against a real cart: the CLI in-process, `stack run` as a process too."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from ..helpers import cli, cli_json, updates_on
from ..stackhelpers import finish, spawn


def start_shop(*, lease: int | None = None) -> None:
    """init, status updates on, quick retries; a short StackLeaseSeconds for tests that kill a controller
    (they wait it out before the resend; it must outlast a whole send, so stores get `timeout` below it)."""
    cli("init")
    updates_on()
    cli("config", "set", "StackRetrySchedule", "0.01,0.01")
    if lease:
        cli("config", "set", "StackLeaseSeconds", str(lease))


def import_order(folder: Path, number: str, cart_id: int, email_to: str, store: str,
                 items: tuple[tuple[str, int], ...] = (("MUG-1", 2),)) -> None:
    """`orders import` of one order whose cart_order_id is the cart's own id."""
    lines = ["order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity,cart_order_id"]
    lines += [f"{number},2026-11-20,Jo Doe,{email_to},90210,{sku},Item {sku},{qty},{cart_id}" for sku, qty in items]
    path = folder / f"order-{number}.csv"
    path.write_text("\n".join(lines) + "\n")
    cli("orders", "import", path, "--store", store)


def store_test(name: str, *, ok: bool) -> str:
    """`stores test NAME --json`: what it saw, or why it failed."""
    result = cli_json("stores", "test", name, code=0 if ok else 1)
    assert result["ok"] is ok, result
    message: str = result["message"]
    return message


def run(code: int = 0) -> str:
    """`statusctl stack run` (one drain); its stdout."""
    return cli("stack", "run", code=code).stdout


def records(order: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = cli_json("stack", "list", "--order", order)
    return rows


def history(order: str) -> list[dict[str, Any]]:
    """`stack history --order` rows: attempt, outcome, status, reason."""
    rows: list[dict[str, Any]] = cli_json("stack", "history", "--order", order)
    return rows


def kill_mid_send(hold: Any, fragment: str, release: str, lease: int) -> None:
    """Start a controller, SIGKILL it while the cart holds the request matching `fragment`, then
    let the cart `release` it ("go": handle it, "drop": never see it) and wait out the lease."""
    hold.hold(fragment)
    db = Path(os.environ["STATUSCTL_DB"])
    proc = spawn(db, "stack", "run")
    try:
        assert hold.wait_for("held"), f"the request never reached the cart: {finish(proc).stderr[-1500:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    hold.release(release)
    if release == "go":
        assert hold.wait_for("done"), "the cart did not finish the held request"
    time.sleep(lease + 0.5)  # the dead controller's lease must run out before anyone resends


def run_with_database_down(db: Any, number: str) -> dict[str, Any]:
    """`stack run` while the carts' MariaDB is stopped; the order's record must wait (retrying after HTTP
    500), and is made due again (`stack retry`, as the operator would) once the database is back."""
    db.stop()
    try:
        run(code=3)
        [waiting] = records(number)
    finally:
        db.start()
    assert waiting["state"] == "retrying" and waiting["last_status"] == 500, waiting
    cli("stack", "retry", waiting["id"])
    return waiting
