"""`statusctl setup`: the Store Setup Wizard.

Page by page, as the original's wizard: the cart (from the matrix), its URL,
credentials and options, a connection test of the unsaved settings, status
updates on or off, the Order Status System, and the status events grid. The
answers are collected in memory (`statusctl.core.wizard.SetupPlan`) and saved
in one transaction after the operator confirms the summary; Ctrl-C or "no"
leaves the database as it was. Every question has a flag; `--yes` takes the
default of every question not answered by one, for scripts. Every flag is
checked before any question is asked or the cart contacted. A store named by
`--name` that exists, or (without a name) one of the same cart type and URL,
is edited in place: re-running `setup --yes` does not add `woocommerce-2`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from statusctl.cli.common import open_db, warn
from statusctl.cli.setup_pages import SettingsPages
from statusctl.cli.setup_store import StorePages
from statusctl.cli.stores import OptionOpt, SecretEnvOpt, SecretOpt

if TYPE_CHECKING:
    from statusctl.core.wizard import SetupPlan, SetupState
    from statusctl.domain.stores import Store

def setup(
    name: Annotated[str | None, typer.Option(
        "--name", help="Store name (default: the store with this cart type and URL, else the cart type's name); "
        "an existing store of that name is edited in place.")] = None,
    cart: Annotated[str | None, typer.Option("--cart", help="Cart type (see `statusctl carts`).")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Base URL the adapter builds on.")] = None,
    secret: SecretOpt = None,
    secret_env: SecretEnvOpt = None,
    option: OptionOpt = None,
    test: Annotated[bool, typer.Option("--test/--no-test", help="Test the settings against the cart before saving.")] = True,
    updates: Annotated[
        bool | None,
        typer.Option("--use-status-updates/--no-use-status-updates", help="Turn UseStatusUpdates on or off (default: on)."),
    ] = None,
    oss: Annotated[
        str | None, typer.Option("--oss", help="Send updates of carts that cannot take them to this oss/webhook store.")
    ] = None,
    no_oss: Annotated[bool, typer.Option("--no-oss", help="Send them to no Order Status System.")] = False,
    default_events: Annotated[bool, typer.Option("--default-events", help="Load the default status events.")] = False,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="EVENT.FIELD=VALUE with FIELD item, order, fires or notify (e.g. item-shipped.notify=no)."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Ask nothing: take the default of every question no flag answers, and save.")
    ] = False,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="Ask even when stdin is not a terminal (answers piped in).")
    ] = False,
) -> None:
    """Set up a store step by step: cart, URL, credentials, test, status updates, OSS, status events.

    An existing store (named by --name, or with the same cart type and URL) is edited in place.
    """
    flags: dict[str, Any] = {"name": name, "cart": cart, "url": url, "secret": secret or [], "secret_env": secret_env or [],
                             "option": option or [], "test": test, "updates": updates, "oss": oss, "no_oss": no_oss,
                             "default_events": default_events, "event": event or []}
    _check_mode(flags, yes=yes, interactive=interactive)
    wizard = _Wizard(yes=yes, flags=flags)
    try:
        plan = wizard.collect()
    except (typer.Abort, KeyboardInterrupt, EOFError):
        from statusctl.domain.errors import ExitCode

        warn("\nSetup cancelled; nothing was saved.")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    wizard.save(plan)  # one transaction: a Ctrl-C now rolls it back whole (main says "Interrupted.")
    from statusctl.core.stores import unset_env_warning

    if warning := unset_env_warning(plan.store):
        warn(warning)  # saved all the same: the controller's environment may have what this shell lacks


def _check_mode(flags: dict[str, Any], *, yes: bool, interactive: bool) -> None:
    """Flags that contradict each other, or a run that could neither ask nor do without asking."""
    from statusctl.domain.errors import InputError

    if flags["oss"] is not None and flags["no_oss"]:
        raise InputError("Give --oss STORE or --no-oss, not both.")
    if not yes and not (interactive or sys.stdin.isatty()):
        raise InputError(
            "statusctl setup has no terminal to ask its questions on; give the answers as flags with --yes "
            "(see `statusctl setup --help`), or run it in a terminal."
        )
    if yes and (flags["cart"] is None or flags["url"] is None):
        missing = " and ".join(f for f, v in (("--cart", flags["cart"]), ("--url", flags["url"])) if v is None)
        raise InputError(f"With --yes, setup needs {missing} (and the cart's secrets) as flags.")


class _Wizard(StorePages, SettingsPages):
    """The pages in their order (page 1 in setup_store.py, the rest in setup_pages.py), the flags' checks, saving."""

    def __init__(self, *, yes: bool, flags: dict[str, Any]) -> None:
        super().__init__(yes=yes, flags=flags)
        self.db = open_db(create=True)
        self.existing: Store | None = None  # the store being edited (None: a new one)

    def collect(self) -> SetupPlan:
        """Every page, then the summary; the plan once the operator confirmed it (nothing is written here)."""
        from statusctl.core.wizard import SetupPlan, read_state

        state = read_state(self.db)
        self.check_flags(state)
        store, tested = self.store_page(state)
        plan = SetupPlan(store, existing=self.existing, use_status_updates=self.updates_page(state))
        plan.change_oss, plan.oss = self.oss_page(state, store)
        plan.events = self.events_page(state)
        self.summary(state, plan, tested)
        if not self.yes and not self.confirm("Save these settings?", default=True):
            self.say("Nothing was saved.")
            raise typer.Exit(1)
        return plan

    def check_flags(self, state: SetupState) -> None:
        """Every flag's value, before any question is asked or the cart contacted."""
        from statusctl.core.wizard import (
            apply_event_changes,
            check_cart,
            check_oss_choice,
            find_target,
        )
        from statusctl.domain.events import default_events
        from statusctl.domain.stores import OSS_CARTS

        f = self.flags
        grid = default_events() if f["default_events"] else dict(state.events)
        apply_event_changes(state.labels, grid, f["event"])
        if f["cart"] is None:
            return
        cart = check_cart(f["cart"])
        name, _ = find_target(state, f["name"], cart, f["url"])
        if f["oss"] is not None:
            candidates = state.oss_candidates()
            check_oss_choice(candidates + [name] if cart in OSS_CARTS and name not in candidates else candidates,
                             f["oss"])

    def save(self, plan: SetupPlan) -> None:
        from statusctl.core.wizard import save

        self.done(save(self.db, plan), plan)
