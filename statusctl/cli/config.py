"""`statusctl config`: the system parameters."""

from __future__ import annotations

from typing import Annotated

import typer

from statusctl.cli.common import JsonOpt, open_db, print_json, sub_app, table

app = sub_app("System parameters (UseStatusUpdates, the stack's retry and lease settings).")


@app.command("list")
def list_(json: JsonOpt = False) -> None:
    """Every parameter with its value and meaning."""
    from statusctl.core.settings import all_values

    values = all_values(open_db())
    if json:
        print_json([{"name": p.name, "value": v, "default": p.default, "meaning": p.meaning} for p, v in values])
        return
    table(None, ["parameter", "value", "meaning"], [[p.name, v, p.meaning] for p, v in values])


@app.command()
def get(name: str, json: JsonOpt = False) -> None:
    """Print one parameter's value."""
    from statusctl.core.settings import canonical_name, get_raw
    from statusctl.domain.display import printable

    value = get_raw(open_db(), name)
    if json:
        print_json({"name": canonical_name(name), "value": value})
    else:
        print(printable(value))


# A value like -1 is the VALUE to check, not an option Click does not know.
@app.command("set", context_settings={"ignore_unknown_options": True})
def set_(
    name: str,
    value: Annotated[str, typer.Argument(help="New value, e.g. true, 8, or 10,60,300.")],
) -> None:
    """Change one parameter (validated)."""
    from statusctl.cli.common import warn
    from statusctl.core.settings import advice, set_value
    from statusctl.domain.display import printable

    canonical, stored = set_value(open_db(), name, value)
    print(printable(f"{canonical} = {stored}"))
    note = advice(canonical, stored)
    if note:
        warn(f"Warning: {note}")
