"""A cart's answer as JSON: the one decoder every adapter uses.

Carts written in PHP (OpenCart, WooCommerce, Magento, PrestaShop) print notices
and warnings before their JSON when the shop runs with `display_errors` on, so
an answer that is not JSON as a whole is read from the first `{` or `[` from
which the rest is JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

_STARTS = re.compile(r"[{\[]")
_MAX_STARTS = 200  # a long HTML page (CSS braces) is not searched to its end


def decode(text: str) -> Any:
    """The JSON of an answer's text, after any PHP notices; None when it holds none."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    for n, start in enumerate(_STARTS.finditer(text)):
        if n >= _MAX_STARTS:
            break
        try:
            return json.loads(text[start.start():])
        except ValueError:
            continue
    return None
