"""End to end in real headless Chromium: a customer fills the form on a phone-sized screen.

Needs the system Chromium (apt-get install chromium) and the playwright
package; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from statusctl.carts.signing import headers as signed_headers
from statusctl.oss.app import create_app
from statusctl.oss.links import derive_link_key, make_link

from .conftest import SECRET, payload
from .live import LiveServer

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install chromium)")


def _post(url: str, body: dict[str, Any], msg_id: str) -> None:
    raw = json.dumps({"id": msg_id, "timestamp": body["changed_at"], **body}).encode()
    answer = httpx.post(f"{url}/api/updates", content=raw,
                        headers={"content-type": "application/json", **signed_headers(SECRET, msg_id, raw)})
    assert answer.status_code == 200, answer.text


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    header = '<header style="background:#222;color:#fff;padding:12px"><strong>Acme Outdoor Co.</strong></header>'
    footer = '<footer style="padding:12px;color:#666">Questions? help@acme.example</footer>'
    app = create_app(tmp_path / "oss.db", [SECRET], header, footer)
    with LiveServer(app) as server:
        yield server


def test_customer_looks_up_an_order_in_chromium(live: LiveServer) -> None:
    _post(live.url, payload("A-1001", postal="K1A 0B1", label="Processing", changed_at="2024-05-01T10:00:00Z"), "rec_1")
    shipped = payload("A-1001", postal="K1A 0B1", label="Partially Shipped", previous="Processing",
                      changed_at="2024-05-01T15:30:00Z", note="The mug ships today; the T-shirt next week.")
    shipped["items"][0].update(label="Item Shipped", shipped=2, changed=True)
    shipped["items"][1].update(label="Backordered")
    shipped["packages"] = [{"tracking": "7023210039414604", "carrier": "Canada Post",
                            "shipped_at": "2024-05-01T15:30:00Z",
                            "items": [{"sku": "MUG-1", "cart_line_id": None, "quantity": 2}]}]
    _post(live.url, shipped, "rec_2")

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id="America/Toronto",
                                          locale="en-CA", is_mobile=True, has_touch=True)
            page = context.new_page()
            page.goto(live.url + "/")
            page.fill("input[name=number]", "a-1001")
            page.fill("input[name=postal]", "k1a0b1")
            page.click("button[type=submit]")
            page.wait_for_url("**/o/*")
            assert "tz=America%2FToronto" in page.url  # filled in by /static/oss.js
            assert page.inner_text("#order-label") == "Partially Shipped"
            assert page.inner_text("#order-number") == "A-1001"
            items = page.locator("ul.items li").all_inner_texts()
            assert "Blue mug" in items[0] and "Qty 2 · 2 shipped" in items[0] and "Item Shipped" in items[0]
            assert "Backordered" in items[1]
            link = page.locator("ul.packages a.tracking")
            assert link.inner_text() == "7023210039414604"
            assert link.get_attribute("href", timeout=5000).startswith("https://www.canadapost-postescanada.ca/")
            timeline = page.locator("ol.timeline li").all_inner_texts()
            assert len(timeline) == 2 and "Wed 01 May 2024, 11:30 EDT" in timeline[0]
            assert "The mug ships today" in timeline[0]
            assert "Acme Outdoor Co." in page.inner_text(".oss-header")
            # Phone width: nothing wider than the screen.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=str(ARTIFACTS / "oss-status-page.png"), full_page=True)

            # An e-mail link has no time zone; the page adds the browser's.
            page.goto(live.url + make_link("A-1001", "K1A 0B1", derive_link_key(SECRET)))
            page.wait_for_url("**tz=America%2FToronto")
            assert page.inner_text("#order-label") == "Partially Shipped"
            context.close()
        finally:
            browser.close()
    assert (ARTIFACTS / "oss-status-page.png").stat().st_size > 10_000
