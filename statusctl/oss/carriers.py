"""Tracking links for the carriers customers ask about most; unknown carriers get no link."""

from __future__ import annotations

import re
from urllib.parse import quote

# Canonical key -> (display name, tracking URL with {} for the URL-quoted number).
CARRIERS: dict[str, tuple[str, str]] = {
    "ups": ("UPS", "https://www.ups.com/track?tracknum={}"),
    "usps": ("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels={}"),
    "fedex": ("FedEx", "https://www.fedex.com/fedextrack/?trknbr={}"),
    "dhl": (
        "DHL",
        "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={}",
    ),
    "canadapost": (
        "Canada Post",
        "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={}",
    ),
    "royalmail": ("Royal Mail", "https://www.royalmail.com/track-your-item#/tracking-results/{}"),
}

# Other spellings order managers and carts use, after lower-casing and dropping non-letters.
ALIASES: dict[str, str] = {
    "unitedparcelservice": "ups",
    "upsground": "ups",
    "uspostalservice": "usps",
    "unitedstatespostalservice": "usps",
    "federalexpress": "fedex",
    "fedexground": "fedex",
    "fedexexpress": "fedex",
    "dhlexpress": "dhl",
    "postescanada": "canadapost",
    "canadapostpostescanada": "canadapost",
}


def carrier_key(carrier: str | None) -> str | None:
    """The canonical key of a carrier name, or None when it is not one we link."""
    if not carrier:
        return None
    key = re.sub(r"[^a-z]", "", carrier.lower())
    key = ALIASES.get(key, key)
    return key if key in CARRIERS else None


def carrier_name(carrier: str | None) -> str | None:
    """The carrier's usual display name (e.g. 'fedex' -> 'FedEx'); unknown names as given."""
    key = carrier_key(carrier)
    return CARRIERS[key][0] if key else carrier


def tracking_url(carrier: str | None, tracking: str | None) -> str | None:
    """The carrier's tracking page for this number, or None (unknown carrier, no number)."""
    key = carrier_key(carrier)
    number = re.sub(r"\s+", "", tracking or "")
    if key is None or not number:
        return None
    return CARRIERS[key][1].format(quote(number, safe=""))
