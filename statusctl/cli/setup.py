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

from statusctl.cli.common import console, open_db, warn
from statusctl.cli.stores import OptionOpt, SecretEnvOpt, SecretOpt

if TYPE_CHECKING:
    from rich.console import Console

    from statusctl.core.events import Event
    from statusctl.core.stores import Store
    from statusctl.core.wizard import SetupPlan, SetupState

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
    from statusctl.core.errors import InputError

    if oss is not None and no_oss:
        raise InputError("Give --oss STORE or --no-oss, not both.")
    if not yes and not (interactive or sys.stdin.isatty()):
        raise InputError(
            "statusctl setup has no terminal to ask its questions on; give the answers as flags with --yes "
            "(see `statusctl setup --help`), or run it in a terminal."
        )
    if yes and (cart is None or url is None):
        missing = " and ".join(f for f, v in (("--cart", cart), ("--url", url)) if v is None)
        raise InputError(f"With --yes, setup needs {missing} (and the cart's secrets) as flags.")
    wizard = _Wizard(
        yes=yes,
        flags={"name": name, "cart": cart, "url": url, "secret": secret or [], "secret_env": secret_env or [],
               "option": option or [], "test": test, "updates": updates, "oss": oss, "no_oss": no_oss,
               "default_events": default_events, "event": event or []},
    )
    try:
        plan = wizard.collect()
    except (typer.Abort, KeyboardInterrupt, EOFError):
        from statusctl.core.errors import ExitCode

        warn("\nSetup cancelled; nothing was saved.")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    wizard.save(plan)  # one transaction: a Ctrl-C now rolls it back whole (main says "Interrupted.")
    from statusctl.core.stores import unset_env_warning

    if warning := unset_env_warning(plan.store):
        warn(warning)  # saved all the same: the controller's environment may have what this shell lacks


class _Wizard:
    def __init__(self, *, yes: bool, flags: dict[str, Any]) -> None:
        self.yes = yes
        self.flags = flags
        self.out: Console = console()
        self.db = open_db(create=True)
        self.existing: Store | None = None  # the store being edited (None: a new one)

    # -- prompting ---------------------------------------------------------------------------------

    def say(self, text: str, style: str = "") -> None:
        from rich.text import Text

        from statusctl.core.display import printable

        self.out.print(Text(printable(text, lines=True), style=style))

    def page(self, title: str) -> None:
        from rich.rule import Rule

        self.out.print()
        self.out.print(Rule(title, align="left", style="bold"))

    def ask(self, question: str, *, default: str | None = None, hide: bool = False, check: Any = None) -> Any:
        """Prompt until `check(answer)` accepts it (its result is returned); errors are said and asked again."""
        from statusctl.core.errors import StatusctlError

        while True:
            answer: str = typer.prompt(question, default=default, hide_input=hide,
                                       show_default=bool(default) and not hide)
            if check is None:
                return answer
            try:
                return check(answer)
            except StatusctlError as exc:
                self.say(f"  ✗ {exc}", "red")

    def confirm(self, question: str, default: bool) -> bool:
        return bool(typer.confirm(question, default=default))

    # -- the pages ---------------------------------------------------------------------------------

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
        from statusctl.core.stores import OSS_CARTS
        from statusctl.core.wizard import (
            apply_event_changes,
            check_cart,
            check_oss_choice,
            default_events,
            find_target,
        )

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

    def store_page(self, state: SetupState) -> tuple[Store, str]:
        from statusctl.core.errors import StatusctlError
        from statusctl.core.storeedit import changed_store
        from statusctl.core.stores import build_store

        self.page("Store Setup Wizard · page 1: the cart")
        cart = self.choose_cart()
        answers = self.first_answers(state, cart)
        edit = False
        while True:
            if edit:
                answers = self.edit_answers(state, cart, answers)
            try:
                if self.existing is not None:
                    store = changed_store(self.existing, answers["url"], answers["secret"], answers["secret_env"],
                                          answers["option"])
                else:
                    store = build_store(answers["name"], cart, answers["url"], answers["secret"],
                                        answers["secret_env"], answers["option"])
            except StatusctlError as exc:
                if self.yes:
                    raise
                self.say(f"  ✗ {exc}", "red")
                edit = True
                continue
            verdict = self.test(store)
            if verdict is not None:
                return store, verdict
            edit = True

    def choose_cart(self) -> str:
        from statusctl.carts.matrix import CART_TYPES
        from statusctl.core.wizard import check_cart

        if self.flags["cart"] is not None:
            return check_cart(self.flags["cart"])
        self.carts_table()
        names = list(CART_TYPES)
        return str(self.ask(f"Cart type (1–{len(names)} or its name)", check=check_cart))

    def carts_table(self) -> None:
        from rich import box
        from rich.table import Table

        from statusctl.carts.matrix import CART_TYPES

        t = Table(title="The cart matrix: what each cart type accepts", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False)
        wide = self.out.width >= 120
        for col in ("#", "cart type", "order status", "item status", "tracking", "customer note", "how")[:7 if wide else 6]:
            t.add_column(col, no_wrap=col in ("#", "cart type"))
        for i, c in enumerate(CART_TYPES.values(), start=1):
            t.add_row(*[str(i), c.name, c.order_status, c.item_status, c.tracking, c.note, c.how][:7 if wide else 6])
        self.out.print(t)

    def first_answers(self, state: SetupState, cart: str) -> dict[str, Any]:
        """The store's settings from the flags, asking for what they leave out (or defaults with --yes)."""
        from statusctl.carts.matrix import CART_TYPES
        from statusctl.core.errors import InputError
        from statusctl.core.wizard import check_target_name, find_target

        ctype = CART_TYPES[cart]
        f = self.flags
        answers: dict[str, Any] = {"secret": list(f["secret"]), "secret_env": list(f["secret_env"]),
                                   "option": list(f["option"])}
        if f["name"] is not None or self.yes:
            answers["name"], self.existing = find_target(state, f["name"], cart, f["url"])
        else:
            suggested = find_target(state, None, cart, f["url"])[0]
            answers["name"], self.existing = self.ask("Store name", default=suggested,
                                                      check=lambda a: check_target_name(state, a, cart))
        if self.existing is not None:
            return self.existing_answers(state, cart, answers)
        answers["url"] = f["url"] if f["url"] is not None else self.ask_url(ctype.url_hint, None, answers)
        given = {item.partition("=")[0].strip() for item in answers["secret"] + answers["secret_env"]}
        missing = [k for k in ctype.secrets if k not in given]
        if missing and self.yes:
            raise InputError(
                f"With --yes, setup needs the {cart} secret(s) {', '.join(missing)} as --secret-env KEY=ENVVAR "
                "(or --secret KEY=VALUE)."
            )
        for key in missing:
            self.ask_secret(key, None, answers)
        if not self.yes:
            given_opts = {item.partition("=")[0].strip() for item in answers["option"]}
            for key, meaning in ctype.options.items():
                if key not in given_opts:
                    self.ask_option(cart, key, meaning, "", answers)
        return answers

    def existing_answers(self, state: SetupState, cart: str, flags: dict[str, Any]) -> dict[str, Any]:
        """Editing a store: with --yes only what the flags change; else every setting asked, Enter keeping it."""
        from statusctl.core.storeedit import changed_store
        from statusctl.core.wizard import store_answers

        assert self.existing is not None
        flags["url"] = self.flags["url"]
        if self.yes:
            return flags
        self.say(f"Store {self.existing.name!r} exists ({self.existing.cart}, {self.existing.shown_url}): "
                 "setup changes its settings; its orders and queued records stay.", "yellow")
        seed = changed_store(self.existing, flags["url"], flags["secret"], flags["secret_env"], flags["option"])
        return self.edit_answers(state, cart, {"name": seed.name, "url": seed.url, **store_answers(seed)})

    def edit_answers(self, state: SetupState, cart: str, old: dict[str, Any]) -> dict[str, Any]:
        """Ask every setting again, the previous answers as defaults (a typed secret: Enter keeps it)."""
        from statusctl.carts.matrix import CART_TYPES
        from statusctl.core.wizard import check_new_name

        ctype = CART_TYPES[cart]
        self.say("Change what is wrong; Enter keeps an answer.", "dim")
        answers: dict[str, Any] = {"secret": [], "secret_env": [], "option": []}
        if self.existing is not None:  # an edited store keeps its name
            answers["name"] = self.existing.name
        else:
            answers["name"] = self.ask("Store name", default=old["name"], check=lambda a: check_new_name(state, a))
        opts = dict(item.partition("=")[::2] for item in old["option"])
        answers["url"] = self.ask_url(ctype.url_hint, old["url"], answers, opts)
        typed = {k.strip(): v for k, _, v in (item.partition("=") for item in old["secret"])}
        envs = {k.strip(): v for k, _, v in (item.partition("=") for item in old["secret_env"])}
        for key in ctype.secrets:
            self.ask_secret(key, (envs.get(key), typed.get(key)), answers)
        for key, meaning in ctype.options.items():
            self.ask_option(cart, key, meaning, opts.pop(key, ""), answers)
        answers["option"] += [f"{k}={v}" for k, v in opts.items() if k != "allow_http"]
        return answers

    def ask_url(self, hint: str, default: str | None, answers: dict[str, Any], opts: dict[str, str] | None = None) -> str:
        from urllib.parse import urlsplit

        from statusctl.core.stores import check_url, is_loopback

        while True:
            url = str(self.ask(f"URL ({hint})", default=default, check=lambda a: check_url(a, allow_http=True)))
            host = urlsplit(url).hostname or ""
            if urlsplit(url).scheme == "https" or is_loopback(host):
                return url
            if (opts or {}).get("allow_http") == "true" or any(o == "allow_http=true" for o in answers["option"]):
                answers["option"] = [o for o in answers["option"] if not o.startswith("allow_http=")]
                answers["option"].append("allow_http=true")
                return url
            if self.confirm(f"Plain http to {host} sends the credentials unencrypted; allow it (allow_http=true)?",
                            default=False):
                answers["option"].append("allow_http=true")
                return url

    def ask_secret(self, key: str, previous: tuple[str | None, str | None] | None, answers: dict[str, Any]) -> None:
        """One secret: the name of an environment variable holding it, or typed hidden (never echoed)."""
        import os

        from statusctl.core.wizard import check_env_name

        env_before, typed_before = previous or (None, None)

        def env_or_blank(answer: str) -> str:
            return check_env_name(answer) if answer.strip() else ""

        var = str(self.ask(f"Secret {key!r}: environment variable holding it (Enter to type it instead)",
                           default=env_before or "", check=env_or_blank))
        if var:
            if not os.environ.get(var):
                self.say(f"  ! {var} is not set in this shell; the test will fail until it is.", "yellow")
            answers["secret_env"].append(f"{key}={var}")
            return
        question = f"{key} (typing is hidden" + ("; Enter keeps the one typed before)" if typed_before else ")")

        def nonempty(answer: str) -> str:
            from statusctl.core.errors import InputError

            if not answer.strip():
                raise InputError(f"The secret {key!r} cannot be empty.")
            return answer.strip()

        value = str(self.ask(question, default=typed_before, hide=True, check=nonempty))
        answers["secret"].append(f"{key}={value}")

    def ask_option(self, cart: str, key: str, meaning: str, default: str, answers: dict[str, Any]) -> None:
        from statusctl.core.stores import check_options

        def valid(answer: str) -> str:
            if answer.strip():
                check_options(cart, {key: answer.strip()})
            return answer.strip()

        value = str(self.ask(f"Option {key} ({meaning}; Enter for the default)", default=default or "", check=valid))
        if value:
            answers["option"].append(f"{key}={value}")

    def test(self, store: Store) -> str | None:
        """The test's one-line verdict, or None when the operator wants to change the settings."""
        from statusctl.core.errors import InputError
        from statusctl.core.probe import check_store

        if not self.flags["test"]:
            return "not tested (--no-test)"
        while True:
            self.say(f"Testing the settings against {store.shown_url} …", "dim")
            ok, message = check_store(store)
            if ok:
                self.say(f"  ✓ Test OK: {message}", "green")
                return f"OK: {message}"
            self.say(f"  ✗ Test FAILED: {message}", "bold red")
            if self.yes:
                raise InputError(
                    f"The connection test failed ({message}); nothing was saved (fix the settings, or --no-test)."
                )
            choice = str(self.ask("[e]dit the settings, [t]est again, or [q]uit", default="e",
                                  check=_choice("etq"))).lower()
            if choice == "q":
                self.say("Nothing was saved.")
                raise typer.Exit(1)
            if choice == "e":
                return None

    def updates_page(self, state: SetupState) -> bool:
        self.page("Store Setup Wizard · page 2: status updates and the Order Status System")
        now = "on" if state.use_status_updates else "off"
        if self.flags["updates"] is not None:
            return bool(self.flags["updates"])
        if self.yes:
            return True
        self.say(f"UseStatusUpdates is {now}: while it is off no status event fires and nothing is sent.")
        return self.confirm("Use status updates (UseStatusUpdates = true)?", default=True)

    def oss_page(self, state: SetupState, store: Store) -> tuple[bool, str | None]:
        """(change the OSS?, the OSS store or None)."""
        from statusctl.core.errors import InputError
        from statusctl.core.wizard import check_oss_choice

        candidates = state.oss_candidates(None if self.existing else store)
        if self.flags["no_oss"]:
            return True, None
        if self.flags["oss"] is not None:
            return True, check_oss_choice(candidates, str(self.flags["oss"]))
        if self.yes:
            return False, None
        current = f"store {state.oss!r}" if state.oss else "no OSS (internal only)"
        self.say(f"Carts that cannot take status updates send them to the Order Status System; now: {current}.")
        if not candidates:
            what = "this store's updates stay internal" if not store.cart_type.accepts_updates else "nothing to choose"
            self.say(f"No oss or webhook store exists ({what}); `statusctl setup --cart oss` adds one.",
                     "dim" if store.cart_type.accepts_updates else "yellow")
            return False, None
        default = state.oss is not None or not store.cart_type.accepts_updates or store.name in candidates
        if not self.confirm("Send updates of carts that cannot take them to an Order Status System?", default=default):
            return state.oss is not None, None
        if len(candidates) == 1:
            return True, candidates[0]
        pick_default = state.oss if state.oss in candidates else candidates[-1]

        def one_of(answer: str) -> str:
            if answer.strip() not in candidates:
                raise InputError(f"{answer.strip()!r} is not one of {', '.join(candidates)}.")
            return answer.strip()

        return True, str(self.ask(f"OSS store ({', '.join(candidates)})", default=pick_default, check=one_of))

    def events_page(self, state: SetupState) -> list[Event]:
        from statusctl.core.wizard import apply_event_changes, changed_events, default_events

        self.page("Store Setup Wizard · page 3: status events")
        grid = default_events() if self.flags["default_events"] else dict(state.events)
        grid = apply_event_changes(state.labels, grid, self.flags["event"])
        while True:
            self.events_table(state, grid)
            if self.yes:
                break
            answer = str(self.ask("Change an event (its # or name), [d] to load the default status events, "
                                  "Enter when done", default="", check=_event_choice(list(grid)))).strip()
            if not answer:
                break
            if answer == "d":
                grid = default_events()
                self.say("Default status events loaded (saved only when you confirm).", "dim")
                continue
            grid[answer] = self.edit_event(state, grid[answer])
        return changed_events(state.events, grid)

    def events_table(self, state: SetupState, grid: dict[str, Event]) -> None:
        from rich import box
        from rich.table import Table

        t = Table(title="Status events", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False)
        for col in ("#", "event", "item status", "order status", "fires", "notify cart"):
            t.add_column(col, no_wrap=col in ("#", "event", "fires"))
        for i, e in enumerate(grid.values(), start=1):
            changed = e != state.events.get(e.name)
            t.add_row(str(i), e.name + (" *" if changed else ""), e.item_label or "–", e.order_label or "–",
                      "yes" if e.fires else "no", "yes" if e.notify else "no", style="bold" if changed else "")
        self.out.print(t)
        if any(e != state.events.get(e.name) for e in grid.values()):
            self.say("* changed (saved only when you confirm)", "dim")

    def edit_event(self, state: SetupState, event: Event) -> Event:
        from statusctl.core.events import change_event

        self.say(f"{event.name}: '-' clears a label, Enter keeps it.", "bold")
        for kind in ("item", "order"):
            names = [x.name for x in state.labels if x.fits(kind)]
            self.say(f"  {kind} labels: {', '.join(names)}", "dim")
            current = event.item_label if kind == "item" else event.order_label
            event = self.ask(
                f"{kind.capitalize()} status", default=current or "-",
                check=lambda a, k=kind, e=event: change_event(state.labels, e, **{f"{k}_label": a}),
            )
        fires = self.confirm("Fires?", default=event.fires)
        notify = self.confirm("Notify cart?", default=event.notify)
        return change_event(state.labels, event, fires=fires, notify=notify)

    # -- the end -----------------------------------------------------------------------------------

    def summary(self, state: SetupState, plan: SetupPlan, tested: str) -> None:
        from rich.table import Table

        from statusctl.core.stores import describe_destination, label_note

        store = plan.store
        oss_after = plan.oss if plan.change_oss else state.oss
        what = "existing: its settings change" if plan.existing else "new"
        rows = [["store", f"{store.name} ({what})"], ["cart type", store.cart], ["url", store.shown_url]]
        rows += [[f"secret {k}", v] for k, v in store.masked_secrets().items()]
        rows += [[f"option {k}", v] for k, v in sorted(store.options.items())]
        rows.append(["connection test", tested])
        rows.append(["records go to", describe_destination(store, oss_after)])
        if note := label_note(store, state.labels):
            rows.append(["labels", note])
        before = "true" if state.use_status_updates else "false"
        after = "true" if plan.use_status_updates else "false"
        rows.append(["UseStatusUpdates", after if before == after else f"{before} → {after}"])
        was, will = state.oss or "none", oss_after or "none"
        rows.append(["OSS", will if was == will else f"{was} → {will}"])
        for e in plan.events:
            rows.append([f"event {e.name}", f"item {e.item_label or '–'}, order {e.order_label or '–'}, "
                         f"fires {'yes' if e.fires else 'no'}, notify cart {'yes' if e.notify else 'no'}"])
        if not plan.events:
            rows.append(["status events", "unchanged"])
        t = Table(title="Summary: nothing is saved yet", title_justify="left", header_style="bold")
        t.add_column("setting")
        t.add_column("value", overflow="fold")
        for row in rows:
            t.add_row(*row)
        self.page("Store Setup Wizard · summary")
        self.out.print(t)

    def done(self, store: Store, plan: SetupPlan) -> None:
        from statusctl.core.labels import all_labels
        from statusctl.core.stores import describe_destination, label_note, oss_store

        self.say(f"{'Changed' if plan.existing else 'Saved'} store {store.name!r} ({store.cart}); its records go to "
                 f"{describe_destination(store, oss_store(self.db))}.", "green")
        if note := label_note(store, all_labels(self.db)):
            self.say(f"Labels: {note}", "yellow")
        if plan.use_status_updates is False:
            self.say("UseStatusUpdates is off: no status event fires until `statusctl config set UseStatusUpdates true`.")
        self.say(f"Next: `statusctl orders import FILE --store {store.name}`.")


def _choice(letters: str) -> Any:
    def check(answer: str) -> str:
        from statusctl.core.errors import InputError

        if answer.strip().lower()[:1] not in letters or not answer.strip():
            raise InputError(f"Answer one of {', '.join(letters)}.")
        return answer.strip().lower()[:1]

    return check


def _event_choice(names: list[str]) -> Any:
    def check(answer: str) -> str:
        from statusctl.core.errors import InputError

        clean = answer.strip().lower()
        if clean in ("", "d"):
            return clean
        if clean.isdigit() and 1 <= int(clean) <= len(names):
            return names[int(clean) - 1]
        if clean in names:
            return clean
        raise InputError(f"{answer.strip()!r} is not an event; give its # (1–{len(names)}) or its name.")

    return check
