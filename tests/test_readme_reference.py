"""The README's reference parts list what the code has: every system parameter, every common store option,
and `stack status --help` says every reason `--check` exits 3."""

from __future__ import annotations

import re

from statusctl.domain.matrix import COMMON_OPTIONS
from statusctl.domain.settings import PARAMS

from .docs import ROOT
from .helpers import cli

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_system_parameters_table_lists_every_parameter_with_its_default():
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", _section("System parameters"),
                                                         re.M)}
    assert set(rows) == set(PARAMS), "README's System parameters table and core/settings.py PARAMS differ"
    for name, param in PARAMS.items():
        assert rows[name].strip() == param.default, name


def test_the_sentence_on_common_store_options_names_every_one():
    sentence = " ".join(_section("Connecting your carts").split("Every store also takes the options", 1)[1]
                        .split(". ", 1)[0].split())
    for option in COMMON_OPTIONS:
        assert f"`{option}`" in sentence, option


def test_stack_status_help_names_every_reason_check_exits_3():
    text = " ".join(cli("stack", "status", "--help").stdout.split())
    for reason in ("failed", "StackAlertAge", "paused", "misconfigured"):
        assert reason in text, reason
