"""Session fixtures of the real-cart tests (marker `real`): each cart is started once per test session.

`mariadb` is one server for all carts; `opencart` and `woocommerce` unpack
their archives into scratch folders, install, and serve with `php -S`. Each
test still gets its own statusctl database (tests/conftest.py). How long the
start-ups took is printed in the "real carts" section of the summary.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .carts import OpenCart, WooCommerce, WooSite
from .servers import MariaDB, require_tools

STARTUP_S: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STARTUP_S:
        terminalreporter.section("real carts")
        terminalreporter.line(", ".join(f"{k} started in {v:.1f} s" for k, v in STARTUP_S.items()))


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    require_tools("mariadbd", "mariadb-install-db", "mariadb", "php")
    folder = tmp_path_factory.mktemp("mariadb")
    started = time.monotonic()
    server = MariaDB(folder)
    try:
        server.install()
        STARTUP_S["MariaDB"] = time.monotonic() - started
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def opencart(mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenCart]:
    folder = tmp_path_factory.mktemp("opencart")
    started = time.monotonic()
    cart = OpenCart(mariadb, folder)
    try:
        cart.setup()
        STARTUP_S["OpenCart 3.0.5.0"] = time.monotonic() - started
        yield cart
    finally:
        if cart.server:
            cart.server.stop()
        shutil.rmtree(folder, ignore_errors=True)  # 70 MB of PHP: not left for the next sessions to clean


@pytest.fixture(scope="session")
def woocommerce(mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WooCommerce]:
    folder = tmp_path_factory.mktemp("woocommerce")
    started = time.monotonic()
    carts = WooCommerce(mariadb, folder)
    try:
        carts.setup()
        STARTUP_S["WooCommerce 7.9.0 (two sites)"] = time.monotonic() - started
        yield carts
    finally:
        carts.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["shipment-tracking", "ast"])
def woo(request: pytest.FixtureRequest, woocommerce: WooCommerce) -> WooSite:
    """Each WooCommerce test runs on both sites: with Shipment Tracking 1.6.25 and with AST 3.9.2."""
    return woocommerce.sites[request.param]
