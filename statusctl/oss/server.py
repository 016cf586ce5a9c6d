"""Running the OSS under uvicorn: what `statusctl oss serve` calls.

Secrets come from an environment variable (never the command line or the
database); several space-separated secrets allow key rotation. The access log
is off because status links carry a token in their path.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
from pathlib import Path
from typing import Any

from statusctl.core.paths import db_path, oss_db_path
from statusctl.domain.errors import ConfigError, InputError, shown
from statusctl.oss.guard import Limits
from statusctl.storage.backends import Target

ENV_SECRET = "STATUSCTL_OSS_SECRET"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470


def default_db() -> Path:
    """The OSS database beside the main statusctl database."""
    return oss_db_path(db_path())


def secrets_from_env(*names: str) -> list[str]:
    """The webhook secrets held in the environment variables `names` (default STATUSCTL_OSS_SECRET).

    Each variable holds one secret or several separated by spaces; the first
    one found signs new status links. Key rotation: put the new secret first,
    keep the old one until the order manager signs with the new one.
    """
    names = names or (ENV_SECRET,)
    secrets = [value for name in names for value in os.environ.get(name, "").split()]
    if not secrets:
        listed = ", ".join(names)
        raise ConfigError(f"Set {listed} to the OSS store's webhook secret (whsec_…) before starting the OSS.")
    return secrets


def read_frame(path: Path | None, what: str) -> str:
    """The merchant's header or footer HTML file ('' when none is given)."""
    if path is None:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the OSS {what} file {path}: {exc}.") from None


def trusted_proxies(value: str | None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The reverse proxies named in `--forwarded-allow-ips` (addresses or networks, comma-separated).

    Only connections from these may say who the customer is (X-Forwarded-For);
    '*' is refused: it would let any client pick its own rate-limit bucket.
    """
    proxies = []
    for part in (value or "").split(","):
        if part.strip():
            try:
                proxies.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise InputError(
                    f"--forwarded-allow-ips: {shown(part.strip())} is not an IP address or network"
                    " (give the reverse proxy's, e.g. 127.0.0.1 or 10.0.0.0/8)."
                ) from None
    return proxies


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (port 0: any free one), or one sentence saying why not."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a port number (1-65535, or 0 for any free port).")
    where = f"{host}:{port}"
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(  # IPv4 unless an IPv6 address, as uvicorn
            host, port, socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"Cannot listen on {shown(where)}: {getattr(exc, 'strerror', None) or exc}.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = "the port is in use (is another OSS running?)" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigError(f"Cannot listen on {where}: {why or exc}.") from None
    return sock


def uvicorn_config(
    app: Any, sock: socket.socket, *, limits: Limits | None = None, forwarded_allow_ips: str | None = None,
    log_level: str = "info",
) -> Any:
    """uvicorn's settings for the OSS on the bound `sock`: the guarded protocol, no access log.

    X-Forwarded-For is read only from the proxies in `forwarded_allow_ips`
    (never uvicorn's default of 127.0.0.1 or its FORWARDED_ALLOW_IPS variable).
    """
    import uvicorn

    from statusctl.oss.guard import protocol

    limits = limits or Limits()
    proxies = trusted_proxies(forwarded_allow_ips)

    def is_proxy(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in proxies if net.version == address.version)

    host, port = sock.getsockname()[:2]
    return uvicorn.Config(
        app, host=host, port=port, http=protocol(limits, is_proxy), ws="none", lifespan="on",
        access_log=False, server_header=False, log_level=log_level,
        proxy_headers=bool(proxies), forwarded_allow_ips=[str(net) for net in proxies],
        timeout_keep_alive=limits.keep_alive, backlog=limits.backlog, timeout_graceful_shutdown=10,
    )


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    db: Target | None = None,
    secrets: list[str] | None = None,
    header_path: Path | None = None,
    footer_path: Path | None = None,
    *,
    title: str = "Order status",
    lookup_limit: tuple[int, float] = (10, 60.0),
    forwarded_allow_ips: str | None = None,
    limits: Limits | None = None,
    log_level: str = "info",
) -> None:
    """Start the OSS and serve until interrupted.

    `secrets` default to STATUSCTL_OSS_SECRET; `db` (a SQLite file or a
    PostgreSQL URL) to the file beside the main database. Behind a reverse proxy, name it in
    `forwarded_allow_ips` so rate limits count the customer's address; no
    other client's X-Forwarded-For is believed. `limits` bounds how long and
    how many connections are kept (statusctl.oss.guard).
    Raises ConfigError (a missing secret, an unreadable header/footer, a port
    that cannot be bound) or InputError (a bad port or proxy list).
    """
    try:
        import uvicorn

        from statusctl.oss.app import create_app
    except ImportError:
        raise ConfigError(
            "The OSS needs its extra packages: pip install 'statusctl[oss]'."
        ) from None
    trusted_proxies(forwarded_allow_ips)  # refuse a bad list before anything starts
    secrets = secrets if secrets is not None else secrets_from_env()
    frames = read_frame(header_path, "header"), read_frame(footer_path, "footer")
    limits = limits or Limits()
    with listen(host, port) as sock:  # before the database: a failed start leaves nothing behind
        app = create_app(db or default_db(), secrets, *frames, title=title, lookup_limit=lookup_limit)
        config = uvicorn_config(app, sock, limits=limits, forwarded_allow_ips=forwarded_allow_ips, log_level=log_level)
        sock.listen(limits.backlog)
        shown_host = f"[{config.host}]" if ":" in config.host else config.host
        logger = logging.getLogger("uvicorn.error")
        logger.info(
            "At most %d connections at once (%d per client); a request must arrive within %g s.",
            limits.connection_cap(), limits.per_client, limits.request_timeout,
        )
        logger.info("The OSS is running on http://%s:%d with the database %s (Ctrl-C to stop).",
                    shown_host, config.port, app.state.store.name)
        uvicorn.Server(config).run(sockets=[sock])


class Background:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1:<free port> (`statusctl demo --oss`, tests)."""

    def __init__(self, app: Any, limits: Limits | None = None, *, forwarded_allow_ips: str | None = None) -> None:
        import threading

        import uvicorn

        self.sock = listen("127.0.0.1", 0)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(app, self.sock, limits=limits, forwarded_allow_ips=forwarded_allow_ips,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @classmethod
    def oss(cls, db: Target, secrets: list[str], **options: Any) -> Background:
        from statusctl.oss.app import create_app

        return cls(create_app(db, secrets, **options))

    def __enter__(self) -> Background:
        import time

        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise ConfigError("The server did not start on 127.0.0.1.")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()
