"""The setup wizard's later pages: status updates, the Order Status System, the status events; the summary.

Each page returns its answer for the `SetupPlan` (the flags' answer, with
`--yes` the default, else the operator's); `summary` shows the whole plan
before it is saved and `done` what was saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from statusctl.cli.setup_prompt import Prompter, event_choice

if TYPE_CHECKING:
    from statusctl.core.wizard import SetupPlan, SetupState
    from statusctl.domain.events import Event
    from statusctl.domain.stores import Store
    from statusctl.storage.db import Database


class SettingsPages(Prompter):
    db: Database
    existing: Store | None  # the store being edited (None: a new one)

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
        from statusctl.core.wizard import check_oss_choice
        from statusctl.domain.errors import InputError

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
        from statusctl.core.wizard import apply_event_changes, changed_events
        from statusctl.domain.events import default_events

        self.page("Store Setup Wizard · page 3: status events")
        grid = default_events() if self.flags["default_events"] else dict(state.events)
        grid = apply_event_changes(state.labels, grid, self.flags["event"])
        while True:
            self.events_table(state, grid)
            if self.yes:
                break
            answer = str(self.ask("Change an event (its # or name), [d] to load the default status events, "
                                  "Enter when done", default="", check=event_choice(list(grid)))).strip()
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
        from statusctl.domain.events import change_event

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
