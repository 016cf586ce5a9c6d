"""The setup wizard's first page: the cart, its URL, credentials and options, and the connection test.

`StorePages.store_page` asks (or, with `--yes`, takes from the flags) the
settings of a new store, or of the existing one being edited, builds the store
from them and tests it against the cart; a failed test lets the operator
change the settings, test again or quit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from statusctl.cli.setup_prompt import Prompter, letter_choice

if TYPE_CHECKING:
    from statusctl.core.wizard import SetupState
    from statusctl.domain.stores import Store


class StorePages(Prompter):
    existing: Store | None  # the store being edited (None: a new one)

    def store_page(self, state: SetupState) -> tuple[Store, str]:
        from statusctl.core.storeedit import changed_store
        from statusctl.core.stores import build_store
        from statusctl.domain.errors import StatusctlError

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
        from statusctl.core.wizard import check_cart
        from statusctl.domain.matrix import CART_TYPES

        if self.flags["cart"] is not None:
            return check_cart(self.flags["cart"])
        self.carts_table()
        names = list(CART_TYPES)
        return str(self.ask(f"Cart type (1–{len(names)} or its name)", check=check_cart))

    def carts_table(self) -> None:
        """The cart matrix, numbered, fitted to the terminal as `statusctl carts` is (no word cut)."""
        from statusctl.cli.common import table
        from statusctl.domain.matrix import CART_TYPES

        table("The cart matrix: what each cart type accepts",
              ["#", "cart type", "order status", "item status", "tracking", "customer note", "how"],
              [[i, c.name, c.order_status, c.item_status, c.tracking, c.note, c.how]
               for i, c in enumerate(CART_TYPES.values(), start=1)],
              optional=["how", "customer note", "item status"])

    def first_answers(self, state: SetupState, cart: str) -> dict[str, Any]:
        """The store's settings from the flags, asking for what they leave out (or defaults with --yes)."""
        from statusctl.core.wizard import check_target_name, find_target
        from statusctl.domain.errors import InputError
        from statusctl.domain.matrix import CART_TYPES

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
        same = None if f["name"] is not None or self.yes else find_target(state, None, cart, answers["url"])[1]
        if same is not None and self.confirm(  # the name was asked before the URL was known
                f"Store {same.name!r} has this cart type and URL; edit it instead of adding {answers['name']!r}?",
                default=True):
            answers["name"], self.existing = same.name, same
            return self.existing_answers(state, cart, answers)
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
        flags.setdefault("url", self.flags["url"])  # the URL typed already, or --url
        if self.yes:
            return flags
        self.say(f"Store {self.existing.name!r} exists ({self.existing.cart}, {self.existing.shown_url}): "
                 "setup changes its settings; its orders and queued records stay.", "yellow")
        seed = changed_store(self.existing, flags["url"], flags["secret"], flags["secret_env"], flags["option"])
        return self.edit_answers(state, cart, {"name": seed.name, "url": seed.url, **store_answers(seed)})

    def edit_answers(self, state: SetupState, cart: str, old: dict[str, Any]) -> dict[str, Any]:
        """Ask every setting again, the previous answers as defaults (a typed secret: Enter keeps it)."""
        from statusctl.core.wizard import check_new_name
        from statusctl.domain.matrix import CART_TYPES

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
            from statusctl.domain.errors import InputError

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
        from statusctl.delivery.probe import check_store
        from statusctl.domain.errors import InputError

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
                                  check=letter_choice("etq"))).lower()
            if choice == "q":
                self.say("Nothing was saved.")
                raise typer.Exit(1)
            if choice == "e":
                return None
