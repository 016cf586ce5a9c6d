"""A small, fast HTTP/1.1 receiver for benchmarks: answers 200 after an optional delay.

Runs in its own process (so it does not share the client's GIL):
    python bench/receiver.py PORT_FILE LATENCY_MS [ARRIVALS_FILE]
It writes the port it listens on to PORT_FILE and counts requests by webhook-id;
with ARRIVALS_FILE it appends each request's arrival (time.monotonic(), the same
clock in every process) as a line, for bench/fairness.py.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import TextIO

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float,
                 log: TextIO | None = None) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if log is not None:
                log.write(f"{time.monotonic()}\n")
                log.flush()
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if length:
                await reader.readexactly(length)
            if latency:
                await asyncio.sleep(latency)
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass  # the client went away, or the receiver is stopping with requests still held (a hanging cart)
    finally:
        writer.close()


async def main(port_file: str, latency_ms: float, arrivals: str | None = None) -> None:
    latency = latency_ms / 1000.0
    log = open(arrivals, "a") if arrivals else None  # noqa: SIM115 (open for the server's whole life)
    server = await asyncio.start_server(lambda r, w: handle(r, w, latency, log), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    with open(port_file, "w") as f:
        f.write(str(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
