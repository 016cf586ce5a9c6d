"""One carrier table and one normalisation: every adapter and the OSS read a carrier name alike."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from statusctl.carts import bigcommerce, magento2, restutil, shopify, woocommerce
from statusctl.carts.base import Context, Record, make_client
from statusctl.carts.shopify import ShopifyAdapter
from statusctl.domain import carriers
from statusctl.domain.carriers import (
    CARRIERS,
    carrier,
    carrier_key,
    carrier_name,
    loose_key,
    tracking_url,
)
from statusctl.storage import oss as oss_store

from . import fake_bigcommerce, fake_magento2, fake_shopify
from .contract import shipped_payload
from .fakeserver import FakeServer
from .restkit import deliver

# Spellings of one carrier, as order managers write them.
SPELLINGS = {
    "canadapost": ["CanadaPost", "Canada Post", "canada-post", "CANADA POST", "Postes Canada"],
    "fedex": ["FedEx", "fedex", "Fed Ex", "Federal Express", "FedEx Ground"],
    "dhl": ["DHL", "dhl", "DHL Express", "dhl-express"],
    "ups": ["UPS", "ups", "United Parcel Service", "U.P.S."],
    "royalmail": ["Royal Mail", "RoyalMail", "royal_mail"],
}
ALL = [(key, name) for key, names in SPELLINGS.items() for name in names]


@pytest.mark.parametrize("key,name", ALL)
def test_every_spelling_means_the_same_carrier(key: str, name: str) -> None:
    assert carrier_key(name) == key and loose_key(name) == key
    assert carrier_name(name) == CARRIERS[key].name
    assert tracking_url(name, "AB 12") == CARRIERS[key].url.format("AB12")


def test_unknown_carriers_stay_as_given() -> None:
    assert carrier("Acme Freight") is None and carrier_key(None) is None and carrier_name("Acme Freight") == "Acme Freight"
    assert loose_key("ACME  freight") == loose_key("acme-Freight") == "acmefreight"
    assert tracking_url("Acme Freight", "1") is None and tracking_url("DPD", "1") is None  # no page we link


def test_there_is_one_table_and_every_user_reads_it() -> None:
    assert restutil.loose_key is woocommerce.loose_key is carriers.loose_key  # WooCommerce providers
    assert oss_store.carrier_key is carriers.carrier_key  # the OSS's package keys
    for module in (bigcommerce, magento2, shopify):
        assert module.carrier is carriers.carrier
        assert not [n for n in vars(module) if "CARRIER" in n.upper() and n != "carrier"]


def _shipment(name: str) -> dict[str, Any]:
    payload: Any = shipped_payload()
    payload["packages"][0]["carrier"] = name
    return payload


def bigcommerce_value(name: str) -> str:
    fake = fake_bigcommerce.BigFake()
    with FakeServer(fake) as server:
        deliver(fake_bigcommerce.make_store(server.base_url), fake_bigcommerce.secrets(), _shipment(name))
    return str(fake.shipments[501][-1]["tracking_carrier"])


def magento_value(name: str) -> str:
    fake = fake_magento2.MagentoFake()
    with FakeServer(fake) as server:
        deliver(fake_magento2.make_store(server.base_url), fake_magento2.secrets(), _shipment(name))
    return str(fake.shipments[-1]["tracks"][0]["carrier_code"])


def shopify_value(name: str) -> str:
    fake = fake_shopify.ShopifyFake()
    with FakeServer(fake) as server:
        ctx = Context(fake_shopify.make_store(server.base_url), fake_shopify.secrets(), fake_shopify.mappings())

        async def go() -> None:
            async with make_client() as client:
                await ShopifyAdapter(client, ctx).deliver(Record("rec-1", 1, _shipment(name), time.time()))

        asyncio.run(go())
    [fulfilment] = fake.orders["gid://shopify/Order/501"].fulfilments
    return str(fulfilment["trackingInfo"][0]["company"])


@pytest.mark.parametrize("key", ["canadapost", "dhl"])
def test_every_cart_and_the_oss_read_each_spelling_alike(key: str) -> None:
    """'CanadaPost' used to get a tracking link on BigCommerce but not on Shopify."""
    expected = CARRIERS[key]
    for name in SPELLINGS[key][:3]:
        assert bigcommerce_value(name) == expected.bigcommerce, name
        assert magento_value(name) == (expected.magento2 or "custom"), name
        assert shopify_value(name) == expected.shopify, name
        assert tracking_url(name, "T1") == expected.url.format("T1"), name


def test_an_unknown_carrier_goes_as_written() -> None:
    assert bigcommerce_value("Acme Freight") == ""
    assert magento_value("Acme Freight") == "custom"
    assert shopify_value(" Acme Freight ") == "Acme Freight"
