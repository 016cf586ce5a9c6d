"""Carriers: one table and one normalisation for every cart adapter and the OSS (no I/O).

A carrier name as an order manager writes it ("FedEx", "fed ex", "Federal Express",
"CanadaPost", "Postes Canada") is reduced by `normal()` (case-folded, letters and
digits only) and then by ALIASES to a key of CARRIERS. Each entry says how the
carrier is spelled where a spelling matters: the name customers read (and Shopify's
tracking company, which builds its link only for its own spelling), BigCommerce's
`tracking_carrier` value, Magento's `carrier_code`, and its tracking page. A name
that is not in the table is no carrier we know: adapters send it as text, the OSS
shows it without a link.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Carrier:
    name: str  # as customers read it
    shopify: str  # Shopify's trackingInfo.company spelling
    bigcommerce: str = ""  # BigCommerce tracking_carrier ('' when it has none)
    magento2: str = ""  # Magento carrier_code ('' sends "custom")
    url: str = ""  # tracking page with {} for the URL-quoted number ('' when we link none)


CARRIERS: dict[str, Carrier] = {
    "ups": Carrier("UPS", "UPS", "ups", "ups", "https://www.ups.com/track?tracknum={}"),
    "usps": Carrier("USPS", "USPS", "usps", "usps", "https://tools.usps.com/go/TrackConfirmAction?tLabels={}"),
    "fedex": Carrier("FedEx", "FedEx", "fedex", "fedex", "https://www.fedex.com/fedextrack/?trknbr={}"),
    "dhl": Carrier("DHL", "DHL Express", "dhl", "dhl",
                   "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={}"),
    "canadapost": Carrier("Canada Post", "Canada Post", "canada-post", "",
                          "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={}"),
    "royalmail": Carrier("Royal Mail", "Royal Mail", "royal-mail", "",
                         "https://www.royalmail.com/track-your-item#/tracking-results/{}"),
    "australiapost": Carrier("Australia Post", "Australia Post", "australia-post"),
    "dpd": Carrier("DPD", "DPD"),
    "gls": Carrier("GLS", "GLS"),
    "ontrac": Carrier("OnTrac", "OnTrac"),
    "purolator": Carrier("Purolator", "Purolator"),
    "postnl": Carrier("PostNL", "PostNL"),
    "tnt": Carrier("TNT", "TNT"),
}

# Other spellings order managers and carts use, after `normal()`.
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


def normal(name: str) -> str:
    """A name compared loosely: 'FedEx', 'fedex', 'Fed Ex' and 'fed-ex' alike."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def carrier_key(name: str | None) -> str | None:
    """The key of a carrier we know, or None."""
    if not name:
        return None
    key = normal(name)
    key = ALIASES.get(key, key)
    return key if key in CARRIERS else None


def loose_key(name: str) -> str:
    """What two carrier names are compared by: a known carrier's key, else the name loosely
    (so 'Federal Express' finds a cart's 'FedEx' provider, and 'Acme Freight' finds 'ACME freight')."""
    return carrier_key(name) or normal(name)


def carrier(name: str | None) -> Carrier | None:
    """The carrier a name means, or None when it is none we know."""
    key = carrier_key(name)
    return CARRIERS[key] if key else None


def carrier_name(name: str | None) -> str | None:
    """The carrier's usual name (e.g. 'fedex' -> 'FedEx'); unknown names as given."""
    found = carrier(name)
    return found.name if found else name


def tracking_url(name: str | None, tracking: str | None) -> str | None:
    """The carrier's tracking page for this number, or None (no page we know, no number)."""
    found = carrier(name)
    number = "".join((tracking or "").split())
    if found is None or not found.url or not number:
        return None
    return found.url.format(quote(number, safe=""))
