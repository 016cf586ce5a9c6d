"""Several `statusctl oss serve` processes on one PostgreSQL database, as behind a load balancer.

Updates sent to either process are seen by lookups on both; updates of one order sent to
both at once (their packages listed in different orders, each delivery repeated to the
other process) end with the newest update shown, every update recorded once, and no
deadlock or error. The database URL's password is never in anything a process writes.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from statusctl.carts.signing import headers as signed_headers
from statusctl.oss.links import derive_link_key, make_link
from statusctl.oss.server import ENV_SECRET

from .conftest import SECRET, payload
from .process import OssProcess

UPDATES = 40  # of one order, sent to both processes at once


def _send(url: str, body: dict[str, Any], msg_id: str) -> httpx.Response:
    raw = json.dumps({"id": msg_id, "timestamp": int(time.time()), **body}).encode()
    hdrs = {**signed_headers(SECRET, msg_id, raw), "content-type": "application/json"}
    return httpx.post(f"{url}/api/updates", content=raw, headers=hdrs, timeout=30)


def _order(url: str, number: str) -> httpx.Response:
    return httpx.get(f"{url}/api/orders/{number}", params={"postal": "90210"}, timeout=10)


@contextlib.contextmanager
def _servers(tmp_path: Path, db: str, count: int = 2) -> Any:
    """`count` OSS processes on the database `db`, started at once (so they migrate it at once)."""
    procs = [OssProcess(tmp_path, db=db) for _ in range(count)]
    with contextlib.ExitStack() as stack:
        for proc in procs:
            proc.start()
            stack.callback(proc.__exit__)
        for proc in procs:
            proc.wait_started()
        yield procs


def _page(url: str, number: str) -> httpx.Response:
    """The order's status page through its signed link (a valid link is not rate-limited, unlike lookups)."""
    return httpx.get(url + make_link(number, "90210", derive_link_key(SECRET), store="shop", base_url=""), timeout=10)


def test_updates_sent_to_either_process_are_seen_by_both(tmp_path: Path, pg_url: str) -> None:
    with _servers(tmp_path, pg_url) as (one, two):
        for n in range(20):
            answer = (one, two)[n % 2].post_update(f"S{n}", label=f"Label-{n:02d}")
            assert (answer.status_code, answer.json()["status"]) == (200, "applied"), answer.text
        for server in (one, two):
            for n in range(20):
                shown = _page(server.url, f"S{n}")
                assert shown.status_code == 200 and f"Label-{n:02d}" in shown.text, shown.text
            assert _order(server.url, "S7").json()["label"] == "Label-07"
            assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}
    for proc in (one, two):
        assert not [line for line in proc.lines if "Traceback" in line or "ERROR" in line], proc.lines


def _update(k: int) -> dict[str, Any]:
    """Update k of order HOT: a later changed_at for a larger k; its packages listed in a rotated order."""
    when = f"2024-05-01T11:{k:02d}:00Z"
    tracking = [f"1Z{i:04d}" for i in range(4)]
    rotated = tracking[k % 4:] + tracking[:k % 4]
    packages = [{"tracking": t, "carrier": "UPS", "shipped_at": when, "items": []} for t in rotated]
    return payload("HOT", label=f"Step {k}", changed_at=when, packages=packages)


def test_one_order_updated_through_both_processes_at_once_ends_newest(tmp_path: Path, pg_server: Any) -> None:
    db = pg_server.url(pg_server.create_database("oss"))
    with _servers(tmp_path, db) as (one, two):
        # Every delivery goes to both processes at once (a retry after a timeout may reach the other).
        jobs = [(server.url, _update(k), f"msg_hot_{k}") for k in range(UPDATES) for server in (one, two)]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda job: _send(*job), jobs))
        assert [a.status_code for a in answers] == [200] * len(jobs), [a.text for a in answers if a.status_code != 200]
        outcomes = Counter(a.json()["status"] for a in answers)
        assert outcomes["duplicate"] == UPDATES and outcomes["applied"] + outcomes["late"] == UPDATES, outcomes
        for server in (one, two):
            shown = _order(server.url, "HOT").json()
            assert shown["label"] == f"Step {UPDATES - 1}"
            assert len(shown["history"]) == UPDATES
            assert sorted(p["tracking"] for p in shown["packages"]) == [f"1Z{i:04d}" for i in range(4)]
            assert {p["shipped_at"] for p in shown["packages"]} == {f"2024-05-01T11:{UPDATES - 1:02d}:00Z"}


def _password_database(pg_server: Any) -> str:
    """A database owned by the password role (which may create the OSS's tables in it): its URL with the password."""
    from tests.pgcluster import PASSWORD_ROLE

    name = pg_server.create_database("oss")
    pg_server.sql(f'ALTER DATABASE "{name}" OWNER TO {PASSWORD_ROLE}')
    return str(pg_server.url(name, PASSWORD_ROLE, pg_server.password))


def _secrets_of(pg_server: Any) -> list[str]:
    return [pg_server.password, quote(pg_server.password, safe="")]


def test_the_database_password_is_in_no_line_a_server_writes(tmp_path: Path, pg_server: Any) -> None:
    url = _password_database(pg_server)
    with OssProcess(tmp_path, db=url) as server:
        assert server.post_update("P1").status_code == 200
        assert _order(server.url, "P1").status_code == 200
        assert httpx.get(f"{server.url}/o/not-a-token", timeout=10).status_code == 404
    text = "".join(server.lines)
    assert "postgresql://statusctl_pw:••••••@127.0.0.1" in text, text  # the database is named, masked
    assert not [s for s in _secrets_of(pg_server) if s in text], text


def _serve_once(tmp_path: Path, db: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, ENV_SECRET: SECRET, "STATUSCTL_DB": str(tmp_path / "main.db")}
    return subprocess.run([sys.executable, "-m", "statusctl", "oss", "serve", "--port", "0", "--db", db],
                          capture_output=True, text=True, env=env, timeout=60)


def test_a_wrong_password_is_one_sentence_without_it(tmp_path: Path, pg_server: Any) -> None:
    url = _password_database(pg_server)
    wrong = url.replace(quote(pg_server.password, safe=""), "not-the-pw-42")
    done = _serve_once(tmp_path, wrong)
    assert done.returncode == 1 and done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "authentication" in done.stderr.lower() or "password" in done.stderr.lower(), done.stderr
    assert "not-the-pw-42" not in done.stderr + done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("db", ["mysql://u:hunter2@db/oss", "postgresql://u:hunter2@127.0.0.1:1/oss"])
def test_a_database_that_cannot_be_had_is_one_sentence_without_the_password(tmp_path: Path, db: str) -> None:
    done = _serve_once(tmp_path, db)
    assert done.returncode != 0 and done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_without_db_a_main_database_on_postgresql_is_one_sentence(tmp_path: Path, pg_server: Any) -> None:
    import os

    from statusctl.core.init import ensure_initialized
    from statusctl.storage.backends import open_database

    url = _password_database(pg_server)
    main = open_database(url, create=True)
    ensure_initialized(main)
    main.close()
    env = {**os.environ, ENV_SECRET: SECRET, "STATUSCTL_DB": url}
    done = subprocess.run([sys.executable, "-m", "statusctl", "oss", "serve", "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("Error: The statusctl database is postgresql://statusctl_pw:••••••@"), done.stderr
    assert "give it with --db" in done.stderr
    assert not [s for s in _secrets_of(pg_server) if s in done.stderr + done.stdout]
