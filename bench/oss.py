"""How many updates per second the OSS takes and how many lookups it serves, next to a bare app.

Both servers are one uvicorn process each, started by this script on
127.0.0.1 ports the OS picks. The bare app has the same routes, the same
middleware and the same handler shape (read the body, answer JSON; answer a
status page of the same size) but no signature check, no SQLite and no
rendering, so the ratio is what the OSS's own work costs. Load comes from wrk
when it is installed (apt-get install wrk), else from a small asyncio client
in this process (slower: the figures are then a floor).

    python bench/oss.py [--seconds 5] [--updates-connections 8] [--lookup-connections 32]

The OSS database lives in a temporary directory and is durable
(synchronous=FULL): every 200 means the update is on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from statusctl.carts.signing import sign  # noqa: E402
from statusctl.oss.links import derive_link_key, make_token  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"bench-secret-bench-secret-bench!").decode()
SEED_ORDERS = 1000
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)

POST_LUA = """
local counter = 0
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
local reqs, n, i = {}, 0, 0
function init(args)
  local path, nthreads, ts = args[1], tonumber(args[2]), args[3]
  local k = 0
  for line in io.lines(path) do
    if k % nthreads == tid then
      local id, sig, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t(.*)$")
      n = n + 1
      reqs[n] = wrk.format("POST", "/api/updates", {["content-type"] = "application/json",
        ["webhook-id"] = id, ["webhook-timestamp"] = ts, ["webhook-signature"] = sig}, body)
    end
    k = k + 1
  end
end
function request() i = i % n + 1; return reqs[i] end
"""

GET_LUA = """
local counter = 0
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
local reqs, n, i = {}, 0, 0
function init(args)
  for line in io.lines(args[1]) do n = n + 1; reqs[n] = wrk.format("GET", line) end
  i = tid * 97
end
function request() i = i % n + 1; return reqs[i] end
"""


# -- the servers (run in child processes) ------------------------------------------


def bare_app(page_bytes: int) -> Any:
    """Same routes, middleware and handler shape as the OSS, without its work."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from statusctl.oss.app import _SecurityHeaders

    page = "<!doctype html><p>" + "x" * max(0, page_bytes - 20)
    order = {"number": "1", "label": "Processing", "items": [], "packages": [], "history": []}

    async def updates(request: Request) -> Response:
        body = await request.body()
        json.loads(body)
        return JSONResponse({"status": "applied", "id": request.headers.get("webhook-id")})

    async def status(request: Request) -> Response:
        return HTMLResponse(page, 200, {"cache-control": "no-store"})

    async def api(request: Request) -> Response:
        return JSONResponse(order, 200, {"cache-control": "no-store"})

    app = Starlette(routes=[Route("/api/updates", updates, methods=["POST"]),
                            Route("/o/{token}", status, methods=["GET"]),
                            Route("/api/orders/{number:path}", api, methods=["GET"])])
    app.add_middleware(_SecurityHeaders)
    return app


def child(kind: str, port: int, db: str, page_bytes: int) -> None:
    import uvicorn

    from statusctl.oss.app import create_app

    if kind == "oss":
        # Lookups come from one address here; the per-client limit would stop them at once.
        app = create_app(Path(db), [SECRET], lookup_limit=(10**9, 1.0))
    else:
        app = bare_app(page_bytes)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, kind: str, db: Path, page_bytes: int = 0) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", kind, "--port", str(self.port), "--db", str(db),
             "--page-bytes", str(page_bytes)],
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"the {kind} server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- what is sent -------------------------------------------------------------------

LABELS = ["Order Received", "Processing", "Partially Shipped", "Order Shipped"]


def update_body(number: str, k: int) -> dict[str, Any]:
    """The k-th update (0-3) of an order: labels move on, shipping adds a package."""
    at = (T0 + timedelta(minutes=k * 10)).isoformat().replace("+00:00", "Z")
    items = [
        {"sku": f"SKU-{s}", "cart_line_id": None, "name": f"Product {s}", "quantity": 2,
         "shipped": 2 if k >= 2 + (s > 0) else 0, "cancelled": False, "changed": k >= 2,
         "label": "Item Shipped" if k >= 2 + (s > 0) else None, "previous_label": None}
        for s in range(3)
    ]
    packages = [{"tracking": f"1Z{number}{k}", "carrier": "UPS", "shipped_at": at,
                 "items": [{"sku": "SKU-0", "cart_line_id": None, "quantity": 2}]}] if k >= 2 else []
    return {"type": "order.status_changed", "store": "bench",
            "order": {"number": number, "cart_order_id": None, "label": LABELS[k],
                      "previous_label": LABELS[k - 1] if k else None, "postal_code": "90210",
                      "date": "2024-05-01"},
            "items": items, "packages": packages, "note": "Thank you!" if k == 3 else None,
            "events": ["order-approved"], "changed_at": at}


def encoded(msg_id: str, body: dict[str, Any]) -> bytes:
    return json.dumps({"id": msg_id, "timestamp": body["changed_at"], **body}, separators=(",", ":")).encode()


def seed(db: Path) -> None:
    """SEED_ORDERS orders with 4 updates each, written straight into the OSS database."""
    from statusctl.oss.store import OssStore
    from statusctl.oss.validate import parse_update

    store = OssStore(db)

    def work(part: int) -> None:
        for n in range(part, SEED_ORDERS, 8):
            for k in range(4):
                payload, changed_at = parse_update(encoded("x", update_body(f"S-{n}", k)))
                store.apply(payload, changed_at, f"seed-{n}-{k}", time.time())

    threads = [threading.Thread(target=work, args=(p,)) for p in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()


def write_updates(path: Path, prefix: str, count: int, ts: int) -> None:
    """`count` signed updates (4 per order, new orders), one per line: id TAB signature TAB body."""
    with path.open("w", encoding="utf-8") as out:
        for j in range(count):
            msg_id = f"{prefix}_{j:08d}"
            body = encoded(msg_id, update_body(f"{prefix}-{j // 4}", j % 4))
            out.write(f"{msg_id}\t{sign(SECRET, msg_id, ts, body)}\t{body.decode()}\n")


# -- load generators ----------------------------------------------------------------


def run_wrk(url: str, script: str, args: list[str], connections: int, seconds: float) -> dict[str, float]:
    threads = min(2, connections)
    args = [a.replace("{threads}", str(threads)) for a in args]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", f.name, url, "--", *args],
            capture_output=True, text=True, timeout=seconds + 120, check=True,
        )
    finally:
        os.unlink(f.name)
    out = done.stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m[2]]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        "requests": float(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
        "non2xx": float(bad[1]) if bad else 0.0,
        "p50": ms("50%"), "p99": ms("99%"),
        "socket_errors": 1.0 if errors else 0.0,
    }


async def _client(port: int, requests: list[bytes], start: int, stop_at: float, stats: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = start
    while time.monotonic() < stop_at:
        t = time.perf_counter()
        writer.write(requests[i % len(requests)])
        i += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
        await reader.readexactly(length)
        stats["latencies"].append(time.perf_counter() - t)
        stats["non2xx"] += not head.startswith(b"HTTP/1.1 2")
    writer.close()


def run_python(port: int, requests: list[bytes], connections: int, seconds: float) -> dict[str, float]:
    stats: dict[str, Any] = {"latencies": [], "non2xx": 0}

    async def main() -> None:
        stop_at = time.monotonic() + seconds
        step = max(1, len(requests) // connections)
        await asyncio.gather(*(_client(port, requests, c * step, stop_at, stats) for c in range(connections)))

    t = time.perf_counter()
    asyncio.run(main())
    lat = sorted(stats["latencies"])
    n = len(lat)
    return {"rps": n / (time.perf_counter() - t), "requests": float(n), "non2xx": float(stats["non2xx"]),
            "p50": lat[n // 2] * 1000 if n else float("nan"), "p99": lat[int(n * 0.99)] * 1000 if n else float("nan"),
            "socket_errors": 0.0}


TS_HOLDER = [0]


def raw_post(line: str) -> bytes:
    msg_id, sig, body = line.rstrip("\n").split("\t", 2)
    data = body.encode()
    return (f"POST /api/updates HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"webhook-id: {msg_id}\r\nwebhook-timestamp: {TS_HOLDER[0]}\r\nwebhook-signature: {sig}\r\n"
            f"content-length: {len(data)}\r\n\r\n").encode() + data


def raw_get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


# -- the run ------------------------------------------------------------------------


def stored(db: Path, prefix: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM history WHERE webhook_id LIKE ?", (prefix + "%",)).fetchone()[0])


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput (the machine may be shared: one figure can be unlucky)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    ap.add_argument("--rounds", type=int, default=3, help="OSS and bare alternate; the median is shown")
    ap.add_argument("--updates-connections", type=int, default=8, help="like the controller's --concurrency")
    ap.add_argument("--lookup-connections", type=int, default=32)
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--page-bytes", type=int, default=0, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.child:
        child(opts.child, opts.port, opts.db, opts.page_bytes)
        return
    use_wrk = opts.loadgen == "wrk" or (opts.loadgen == "auto" and shutil.which("wrk") is not None)
    if opts.loadgen == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    secs, cu, cl, rounds = opts.seconds, opts.updates_connections, opts.lookup_connections, opts.rounds
    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="oss-bench-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "oss.db"
        t = time.perf_counter()
        seed(db)
        print(f"seeded {SEED_ORDERS} orders x 4 updates in {time.perf_counter() - t:.1f} s")
        ts = int(time.time())
        TS_HOLDER[0] = ts
        count = int(max(20_000, secs * 6000))
        # Distinct ids for every phase and round: no measurement replays another's updates.
        files = {f"{kind}{r}": tmp / f"{kind}{r}.txt" for kind in ("one", "many", "bare") for r in range(rounds)}
        for name, path in files.items():
            write_updates(path, name, count, ts)
        key = derive_link_key(SECRET)
        pages = tmp / "pages.txt"
        pages.write_text("".join(f"/o/{make_token(f'S-{n}', '90210', key)}?tz=America%2FNew_York\n"
                                 for n in range(SEED_ORDERS)))
        apis = tmp / "apis.txt"
        apis.write_text("".join(f"/api/orders/S-{n}?postal=90210\n" for n in range(SEED_ORDERS)))

        oss = Server("oss", db)
        import urllib.request

        first = pages.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{oss.port}{first}") as answer:
            page_bytes = len(answer.read())
        bare = Server("bare", db, page_bytes)
        runs: dict[str, list[dict[str, float]]] = {}
        try:
            def post(server: Server, name: str, conns: int) -> dict[str, float]:
                if use_wrk:
                    return run_wrk(f"http://127.0.0.1:{server.port}", POST_LUA,
                                   [str(files[name]), "{threads}", str(ts)], conns, secs)
                lines = files[name].read_text().splitlines()
                return run_python(server.port, [raw_post(x) for x in lines], conns, secs)

            def get(server: Server, path: Path) -> dict[str, float]:
                if use_wrk:
                    return run_wrk(f"http://127.0.0.1:{server.port}", GET_LUA, [str(path)], cl, secs)
                return run_python(server.port, [raw_get(x) for x in path.read_text().splitlines()], cl, secs)

            for r in range(rounds):
                runs.setdefault("updates, 1 connection (OSS)", []).append(post(oss, f"one{r}", 1))
                runs.setdefault("updates (OSS)", []).append(post(oss, f"many{r}", cu))
                runs.setdefault("updates (bare)", []).append(post(bare, f"bare{r}", cu))
                for what, path in (("status page", pages), ("JSON lookup", apis)):
                    runs.setdefault(f"{what} (OSS)", []).append(get(oss, path))
                    runs.setdefault(f"{what} (bare)", []).append(get(bare, path))
        finally:
            oss.stop()
            bare.stop()
        answered = {
            kind: sum(x["requests"] - x["non2xx"] for x in runs[label])
            for kind, label in (("one", "updates, 1 connection (OSS)"), ("many", "updates (OSS)"))
        }
        kept = {kind: sum(stored(db, f"{kind}{r}_") for r in range(rounds)) for kind in ("one", "many")}

    results = {label: median_run(rs) for label, rs in runs.items()}
    gen = "wrk" if use_wrk else "an asyncio client in this process"
    print(f"\nOSS bench: uvicorn, 1 process per server; load from {gen}; {os.cpu_count()} CPUs shared by "
          f"server and load (load average {load:.1f} at start); median of {rounds} x {secs:g} s; updates on "
          f"{cu} connections, lookups on {cl}; status page {page_bytes} bytes\n")
    print(f"{'':34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, res in results.items():
        print(f"{name:34}{res['rps']:>10.0f}{res['p50']:>9.2f}{res['p99']:>9.2f}{res['non2xx']:>9.0f}")
    print()
    for what in ("updates", "status page", "JSON lookup"):
        ratio = results[f"{what} (OSS)"]["rps"] / results[f"{what} (bare)"]["rps"]
        print(f"{what:14} OSS / bare app = {ratio:.2f}")
    one, many = results["updates, 1 connection (OSS)"], results["updates (OSS)"]
    print(f"updates        {cu} connections / 1 connection = {many['rps'] / one['rps']:.2f} (commits combined)")
    for kind in ("one", "many"):
        # Rows may exceed answers by the requests still in flight when the load stopped.
        verdict = "none lost" if kept[kind] >= answered[kind] else "FEWER ROWS THAN 200s"
        print(f"updates '{kind}' phases: {answered[kind]:.0f} answered 2xx, {kept[kind]} history rows stored: {verdict}")


if __name__ == "__main__":
    main()
