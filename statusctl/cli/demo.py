"""`statusctl demo`: the whole flow against a built-in demo cart on loopback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from statusctl.cli.common import JsonOpt, print_json, say, table, when

if TYPE_CHECKING:
    from statusctl.core.demo import DemoResult


def demo(
    oss: Annotated[bool, typer.Option("--oss", help="Also start the Order Status System and print its address.")] = False,
    json: JsonOpt = False,
) -> None:
    """Run the whole flow on a temporary database against a demo cart, then clean up."""
    from statusctl.core.demo import run_demo
    from statusctl.core.errors import ExitCode

    result = run_demo(step=(lambda s: None) if json else (lambda s: say(f"• {s}")), oss=oss,
                      hold=lambda r: _show(r, json))
    assert result.report is not None
    if result.report.problems:
        raise typer.Exit(ExitCode.DELIVERY)


def _show(result: DemoResult, json: bool) -> None:
    """Print what happened while the demo servers still run; with --oss, wait for Enter on a terminal."""
    import sys

    report = result.report
    assert report is not None
    if json:
        print_json({"steps": result.steps, "run": report.as_dict(), "received": result.received,
                    "history": result.history, "orders": result.orders, "oss_url": result.oss_url,
                    "oss_link": result.oss_link})
    else:
        table("What the demo cart received", ["#", "order", "status", "tracking", "form"],
              [[i, r["order"], r["status"], ", ".join(r["tracking"]) or None, r["form"]]
               for i, r in enumerate(result.received, start=1)])
        table("Stack history", ["at", "order", "record", "try", "outcome", "status", "ms"],
              [[when(h["at"]), h["order_number"], h["uid"], h["attempt"], h["outcome"], h["status"], h["duration_ms"]]
               for h in result.history])
        table("Orders now", ["order", "store", "label", "items"],
              [[o["number"], o["store"], o["label"], o["items"]] for o in result.orders])
    if result.oss_url and not json:
        say(f"Order Status System: {result.oss_url}/  (order 2001, postal code 02139)")
        say(f"Signed link for e-mails: {result.oss_link}")
        if sys.stdin.isatty():
            typer.prompt("Press Enter to stop the demo servers", default="", show_default=False)
