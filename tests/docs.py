"""Reading the commands the README documents, so tests run exactly what a user would type."""

from __future__ import annotations

import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def documented(cart: str) -> list[list[str]]:
    """The `statusctl …` commands of the first code block of the README's section for `cart`, as argv."""
    text = (ROOT / "README.md").read_text()
    marker = f"<!-- cart:{cart} -->"
    assert marker in text, f"README.md has no section marked {marker}"
    section = text.split(marker, 1)[1].split("\n### ", 1)[0]
    block = section.split("```")[1]
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("statusctl ")]
