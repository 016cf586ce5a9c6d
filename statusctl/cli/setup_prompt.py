"""The setup wizard's way of asking: pages, lines, and questions asked until their answer is valid.

`Prompter` is what every page of `statusctl setup` asks with (Typer's prompts
on the terminal, Rich for output); `letter_choice` and `event_choice` are checks
for `Prompter.ask`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from statusctl.cli.common import console

if TYPE_CHECKING:
    from rich.console import Console


class Prompter:
    """Asks the operator, unless `yes` (take every default); `flags` are the answers given on the command line."""

    def __init__(self, *, yes: bool, flags: dict[str, Any]) -> None:
        self.yes = yes
        self.flags = flags
        self.out: Console = console()

    def say(self, text: str, style: str = "") -> None:
        from rich.text import Text

        from statusctl.domain.display import printable

        self.out.print(Text(printable(text, lines=True), style=style))

    def page(self, title: str) -> None:
        from rich.rule import Rule

        self.out.print()
        self.out.print(Rule(title, align="left", style="bold"))

    def ask(self, question: str, *, default: str | None = None, hide: bool = False, check: Any = None) -> Any:
        """Prompt until `check(answer)` accepts it (its result is returned); errors are said and asked again."""
        import sys
        import warnings

        from statusctl.domain.errors import StatusctlError

        while True:
            with warnings.catch_warnings():
                # Answers piped in (a script, a test) cannot be hidden; getpass would say so with
                # a Python warning and its source path at every secret.
                if not sys.stdin.isatty():
                    warnings.simplefilter("ignore")
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


def letter_choice(letters: str) -> Any:
    """A check for `Prompter.ask`: the first letter of the answer, one of `letters`."""

    def check(answer: str) -> str:
        from statusctl.domain.errors import InputError

        if answer.strip().lower()[:1] not in letters or not answer.strip():
            raise InputError(f"Answer one of {', '.join(letters)}.")
        return answer.strip().lower()[:1]

    return check


def event_choice(names: list[str]) -> Any:
    """A check for `Prompter.ask`: an event by its # or name, "d" or "" (Enter)."""

    def check(answer: str) -> str:
        from statusctl.domain.errors import InputError

        clean = answer.strip().lower()
        if clean in ("", "d"):
            return clean
        if clean.isdigit() and 1 <= int(clean) <= len(names):
            return names[int(clean) - 1]
        if clean in names:
            return clean
        raise InputError(f"{answer.strip()!r} is not an event; give its # (1–{len(names)}) or its name.")

    return check
