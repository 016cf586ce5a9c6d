"""The real carts of the tests: OpenCart 3.0.5.0 and WooCommerce 7.9.0 (Shipment Tracking, AST).

Each is unpacked from `<repo root>/../shared/peers/` (unmodified third-party
archives, see the README there), installed the way its own installer does it,
and served by `php -S` (servers.py). Tests read what arrived from the cart's own
tables (SQL) or its REST API, never from statusctl.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from .servers import PHP_DIR, MariaDB, PhpServer, tool

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT.parent / "shared" / "peers"
WORDPRESS = Path("/usr/share/wordpress")


def archive(name: str) -> Path:
    path = PEERS / f"{name}.tar.xz"
    if not path.exists():
        pytest.skip(f"{path} is missing (the real carts' archives live in <repo root>/../shared/peers/)")
    return path


def unpack(name: str, into: Path) -> Path:
    subprocess.run(["tar", "-xJf", str(archive(name)), "-C", str(into)], check=True)
    return into / name


def mail_texts(raw: list[str], to: str) -> list[str]:
    """The text of each message sent to `to` (headers' subject, then every text part decoded)."""
    out = []
    for text in raw:
        msg = email.message_from_string(text, policy=email.policy.default)
        if to not in str(msg.get("To", "")):
            continue
        parts = [str(msg.get("Subject", ""))]
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                parts.append(part.get_content())
        out.append("\n".join(parts))
    return out


# -- OpenCart 3.0.5.0 ------------------------------------------------------------------


class OpenCart:
    """A real OpenCart: `cli_install.php`, then `install/` removed, an API user allowed from 127.0.0.1."""

    DB = "opencart"
    USERNAME = "statusctl"
    KEY = ("Oc7w" * 64)  # OpenCart generates 256-character keys

    def __init__(self, db: MariaDB, folder: Path) -> None:
        self.db = db
        self.folder = folder
        self.server: PhpServer | None = None

    def setup(self) -> None:
        upload = unpack("opencart-3.0.5.0", self.folder) / "upload"
        self.server = PhpServer(upload, self.folder)
        self.db.sql(f"CREATE DATABASE {self.DB}")
        install = [tool("php") or "php", "cli_install.php", "install", "--db_hostname", "127.0.0.1",
                   "--db_username", MariaDB.USER, "--db_password", MariaDB.PASSWORD, "--db_database", self.DB,
                   "--db_driver", "mysqli", "--db_port", str(self.db.port), "--db_prefix", "oc_",
                   "--username", "admin", "--password", "admin-password-1", "--email", "shop@example.test",
                   "--http_server", self.server.url + "/"]
        done = subprocess.run(install, cwd=upload / "install", capture_output=True, text=True)
        if "SUCCESS" not in done.stdout:
            raise RuntimeError(f"OpenCart's cli_install.php failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
        shutil.rmtree(upload / "install")  # as after a real install (the storefront refuses to run beside it)
        self.sql(f"UPDATE oc_api SET username = '{self.USERNAME}', `key` = '{self.KEY}', status = 1; "
                 "INSERT INTO oc_api_ip (api_id, ip) SELECT api_id, '127.0.0.1' FROM oc_api")
        self.server.start()

    @property
    def url(self) -> str:
        assert self.server
        return self.server.url

    def sql(self, statements: str) -> list[list[str]]:
        return self.db.sql(statements, self.DB)

    def add_order(self, status: int, email_to: str, *, modified: str = "NOW() - INTERVAL 1 DAY") -> int:
        """An order as checkout leaves it (one product, totals, its first history entry), at `status`."""
        rows = self.sql(
            "INSERT INTO oc_order SET store_id = 0, store_name = 'Your Store', store_url = 'http://127.0.0.1/', "
            "customer_id = 0, customer_group_id = 1, firstname = 'Jo', lastname = 'Doe', "
            f"email = '{email_to}', telephone = '555-0100', payment_firstname = 'Jo', payment_lastname = 'Doe', "
            "payment_method = 'Cash On Delivery', payment_code = 'cod', shipping_firstname = 'Jo', "
            "shipping_lastname = 'Doe', shipping_method = 'Flat Shipping Rate', shipping_code = 'flat.flat', "
            f"total = 20, order_status_id = {status}, language_id = 1, currency_id = 2, currency_code = 'USD', "
            f"currency_value = 1, date_added = {modified}, date_modified = {modified}; "
            "SET @id = LAST_INSERT_ID(); "
            "INSERT INTO oc_order_product SET order_id = @id, product_id = 40, name = 'iPhone', model = 'product 11', "
            "quantity = 2, price = 10, total = 20, tax = 0; "
            "INSERT INTO oc_order_total SET order_id = @id, code = 'total', title = 'Total', value = 20, sort_order = 9; "
            f"INSERT INTO oc_order_history SET order_id = @id, order_status_id = {status}, notify = 0, comment = '', "
            f"date_added = {modified}; "
            "SELECT @id")
        return int(rows[-1][0])

    def status(self, order_id: int) -> int:
        return int(self.sql(f"SELECT order_status_id FROM oc_order WHERE order_id = {order_id}")[0][0])

    def history(self, order_id: int) -> list[dict[str, Any]]:
        """The order's history entries after its first one, oldest first (the admin's History tab)."""
        rows = self.sql("SELECT order_status_id, notify, HEX(comment) FROM oc_order_history "
                        f"WHERE order_id = {order_id} ORDER BY order_history_id")
        entries = [{"status": int(s), "notify": int(n), "comment": bytes.fromhex(c).decode()} for s, n, c in rows]
        return entries[1:]

    def mails(self, to: str) -> list[str]:
        assert self.server
        return mail_texts(self.server.mails(), to)


# -- WooCommerce 7.9.0 on Debian's WordPress -------------------------------------------


PLUGINS = {
    "shipment-tracking": ("woocommerce-shipment-tracking-1.6.25", "woocommerce-shipment-tracking",
                          "woocommerce-shipment-tracking.php"),
    "ast": ("woo-advanced-shipment-tracking-3.9.2", "woo-advanced-shipment-tracking",
            "woocommerce-advanced-shipment-tracking.php"),
}
# AST downloads its carrier list from api.trackship.com (never reached here): the rows it would
# hold for the carriers the merchant enabled ("display in order").
AST_PROVIDERS = [("UPS", "ups", "US", "https://www.ups.com/track?tracknum=%number%"),
                 ("USPS", "usps", "US", "https://tools.usps.com/go/TrackConfirmAction_input?qtc_tLabels1=%number%"),
                 ("FedEx", "fedex", "US", "https://www.fedex.com/fedextrack/?tracknumbers=%number%")]
ORDERS_PER_SITE = 6  # each WooCommerce test takes one order of its site


@dataclass
class WooSite:
    """One WordPress site with WooCommerce and one tracking plugin, served by its own `php -S`."""

    name: str  # the PLUGINS key
    db_name: str
    server: PhpServer
    key: str
    secret: str
    orders: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def take_order(self) -> int:
        """A fresh processing order (one per test), created with WooCommerce's own functions."""
        return self.orders.pop(0)

    def rest(self, path: str, *, method: str = "GET", **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/wp-json/{path}", auth=(self.key, self.secret),
                                 timeout=30, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def mails(self, to: str) -> list[str]:
        return mail_texts(self.server.mails(), to)


class WooCommerce:
    """One copy of Debian's WordPress with both plugins, serving one site (database) per port."""

    def __init__(self, db: MariaDB, folder: Path) -> None:
        self.db = db
        self.folder = folder
        self.sites: dict[str, WooSite] = {}

    def setup(self) -> None:
        if not (WORDPRESS / "wp-settings.php").exists():
            pytest.skip(f"{WORDPRESS} is missing (Debian: wordpress; .ci/run installs it)")
        root = self.folder / "wordpress"
        subprocess.run(["cp", "-aL", str(WORDPRESS), str(root)], check=True)
        plugins = root / "wp-content" / "plugins"
        unpack("woocommerce-7.9.0", self.folder).rename(plugins / "woocommerce")
        for archive_name, slug, _ in PLUGINS.values():
            unpack(archive_name, self.folder).rename(plugins / slug)
        servers = {name: PhpServer(root, self.folder / name, router=PHP_DIR / "router.php") for name in PLUGINS}
        dbs = {name: f"wp_{name.replace('-', '_')}" for name in PLUGINS}
        config = (PHP_DIR / "wp-config.php.in").read_text()
        sites = "array(" + ", ".join(f"'{s.port}' => '{dbs[n]}'" for n, s in servers.items()) + ")"
        for key, value in {"@SITES@": sites, "@DB_USER@": MariaDB.USER, "@DB_PASSWORD@": MariaDB.PASSWORD,
                           "@DB_PORT@": str(self.db.port)}.items():
            config = config.replace(key, value)
        (root / "wp-config.php").write_text(config)
        for name, server in servers.items():
            self.db.sql(f"CREATE DATABASE {dbs[name]}")
            site = WooSite(name, dbs[name], server, "ck_" + hashlib.sha1(f"{name} key".encode()).hexdigest(),
                           "cs_" + hashlib.sha1(f"{name} secret".encode()).hexdigest())
            self.install(root, site)
            server.start()
            site.rest("wc/v3/orders", params={"per_page": "1"})  # warm the shared opcache of its workers
            self.sites[name] = site

    def install(self, root: Path, site: WooSite) -> None:
        script, port = PHP_DIR / "wp_setup.php", str(site.server.port)
        _, slug, main = PLUGINS[site.name]
        site.server.run(script, str(root), port, "install")
        site.server.run(script, str(root), port, "plugins", "woocommerce/woocommerce.php", f"{slug}/{main}")
        if site.name == "ast":
            values = ", ".join(f"('{n}', '{slug_}', '{c}', '{u}', 1, 1)" for n, slug_, c, u in AST_PROVIDERS)
            self.db.sql("INSERT INTO wp_woo_shippment_provider (provider_name, ts_slug, shipping_country, "
                        f"provider_url, display_in_order, shipping_default) VALUES {values}", site.db_name)
        out = site.server.run(script, str(root), port, "seed", site.key, site.secret, str(ORDERS_PER_SITE))
        site.orders = [int(line) for line in out.split()]

    def stop(self) -> None:
        for site in self.sites.values():
            site.server.stop()


def dump(value: Any) -> str:
    return json.dumps(value, indent=1)[:2000]
