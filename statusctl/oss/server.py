"""Running the OSS under uvicorn: what `statusctl oss serve` calls.

Secrets come from an environment variable (never the command line or the
database); several space-separated secrets allow key rotation. The access log
is off because status links carry a token in their path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from statusctl.core.errors import ConfigError
from statusctl.core.paths import db_path, oss_db_path

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


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    db_path: Path | None = None,
    secrets: list[str] | None = None,
    header_path: Path | None = None,
    footer_path: Path | None = None,
    *,
    title: str = "Order status",
    lookup_limit: tuple[int, float] = (10, 60.0),
    forwarded_allow_ips: str | None = None,
    log_level: str = "info",
) -> None:
    """Start the OSS and serve until interrupted.

    `secrets` default to STATUSCTL_OSS_SECRET; `db_path` to the file beside
    the main database. Behind a reverse proxy, list its address in
    `forwarded_allow_ips` so rate limits count the customer's address
    (uvicorn trusts X-Forwarded-For from 127.0.0.1 by default).
    Raises ConfigError for a missing secret or an unreadable header/footer.
    """
    try:
        import uvicorn

        from statusctl.oss.app import create_app
    except ImportError:
        raise ConfigError(
            "The OSS needs its extra packages: pip install 'statusctl[oss]'."
        ) from None
    app = create_app(
        db_path or default_db(),
        secrets if secrets is not None else secrets_from_env(),
        read_frame(header_path, "header"),
        read_frame(footer_path, "footer"),
        title=title,
        lookup_limit=lookup_limit,
    )
    options: dict[str, Any] = {}
    if forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = forwarded_allow_ips
    config = uvicorn.Config(
        app, host=host, port=port, access_log=False, server_header=False,
        log_level=log_level, lifespan="on", **options,
    )
    uvicorn.Server(config).run()


class Background:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1:<free port> (`statusctl demo --oss`, tests)."""

    def __init__(self, app: Any) -> None:
        import socket
        import threading

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, server_header=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @classmethod
    def oss(cls, db_path: Path, secrets: list[str], **options: Any) -> Background:
        from statusctl.oss.app import create_app

        return cls(create_app(db_path, secrets, **options))

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
