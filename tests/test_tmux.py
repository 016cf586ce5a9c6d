"""The wizard and `stack top` in a real terminal: tmux runs them, send-keys answers, capture-pane reads.

Each test waits for what the screen shows (never for a fixed time) and skips,
with the reason, only where tmux is not installed (CI installs it).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from statusctl.democart import DemoCart

from .carts.fakeserver import Answer, FakeServer
from .helpers import WEBHOOK_SECRET, cli, cli_json, dump, write

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"),
]

PASSWORD = "Tmux-Hidden-Pa55word"
WAIT_S = 60.0


class Tmux:
    """One tmux server on its own socket in tmp_path, one window running one command."""

    def __init__(self, socket: Path, width: int = 110, height: int = 45) -> None:
        self.base = ["tmux", "-S", str(socket), "-f", os.devnull]
        self.width, self.height = width, height
        self.screen = ""

    def tmux(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, check=True).stdout

    def start(self, command: str) -> None:
        # The pane stays after the command ends, so its exit status can be read from the screen.
        shell = f"{command}; echo EXIT=$?; sleep 3600"
        self.tmux("new-session", "-d", "-s", "t", "-x", str(self.width), "-y", str(self.height), shell)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def answer(self, text: str) -> None:
        if text:
            self.tmux("send-keys", "-t", "t", "-l", text)
        self.keys("Enter")

    def capture(self, history: bool = True) -> str:
        self.screen = self.tmux("capture-pane", "-p", "-J", "-t", "t", *(["-S", "-"] if history else []))
        return self.screen

    def wait(self, test: str | Callable[[str], bool], *, count: int = 1, history: bool = True) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            screen = self.capture(history)
            if (screen.count(test) >= count) if isinstance(test, str) else test(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"waited {WAIT_S:.0f}s for {test!r}; the screen shows:\n{self.screen}")

    def stop(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / "tmux.sock")
    yield t
    t.stop()


def statusctl(db: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """A shell command running this statusctl (this interpreter) on the test's database."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "statusctl", "--db", str(db), *args])
    return f"env {prefix} {cmd}" if prefix else cmd


def test_the_wizard_in_a_real_terminal(term: Tmux, db_file: Path):
    cli("init")
    with DemoCart(user="tmux-user", password=PASSWORD) as cart:
        term.start(statusctl(db_file, "setup", env={"COLUMNS": "110", "NO_COLOR": "1"}))
        term.wait("Cart type (1–10 or its name):")
        term.answer("seti")
        term.wait("Store name [seti]:")
        term.answer("")
        term.wait("URL (")
        term.answer(cart.url)
        term.wait("Secret 'user'")
        term.answer("")
        term.wait("user (typing is hidden)")
        term.answer(cart.user)
        term.wait("Secret 'password'")
        term.answer("")
        term.wait("password (typing is hidden)")
        term.answer(PASSWORD)
        term.wait("Option code")
        term.answer("")
        term.wait("Option xml")
        term.answer("")
        term.wait("Test OK: credentials accepted")
        term.wait("Use status updates (UseStatusUpdates = true)? [Y/n]:")
        term.answer("y")
        term.wait("Change an event")
        term.answer("order-shipped")
        term.wait("Item status [-]:")
        term.answer("")
        term.wait("Order status [Order Shipped]:")
        term.answer("")
        term.wait("Fires? [Y/n]:")
        term.answer("")
        term.wait("Notify cart? [Y/n]:")
        term.answer("n")
        screen = term.wait("Change an event", count=2)
        assert "order-shipped *" in screen
        term.answer("")
        screen = term.wait("Save these settings? [Y/n]:")
        assert re.search(r"secret password\W+••••••", screen), screen
        assert re.search(r"UseStatusUpdates\W+false → true", screen), screen
        term.answer("y")
        screen = term.wait("EXIT=0")
        url = cart.url
    assert "Saved store 'seti' (seti)" in screen
    assert PASSWORD not in screen and "tmux-user" not in screen  # typed hidden, masked in the summary
    assert cli_json("stores", "show", "seti")["url"] == url
    grid = {e["event"]: e for e in cli_json("events", "list")}
    assert grid["order-shipped"]["notify_cart"] is False


def test_ctrl_c_in_a_real_terminal_saves_nothing(term: Tmux, db_file: Path):
    cli("init")
    before = dump()
    term.start(statusctl(db_file, "setup", env={"NO_COLOR": "1"}))
    term.wait("Cart type (1–10 or its name):")
    term.answer("webhook")
    term.wait("Store name [webhook]:")
    term.answer("hooks")
    term.wait("URL (")
    term.keys("C-c")
    screen = term.wait("EXIT=130")
    assert "Setup cancelled; nothing was saved." in screen and "Traceback" not in screen
    assert dump() == before


def _queued(screen: str, store: str) -> int | None:
    """The queued count of `store` on a `stack top` screen; 0 once the stack is empty; None if not shown."""
    match = re.search(rf"^ ?{store}\s+(\d+)\s", screen, re.M)
    if match:
        return int(match.group(1))
    return 0 if "The stack is empty." in screen else None


def test_stack_top_while_a_controller_drains(term: Tmux, db_file: Path, tmp_path: Path):
    n = 60
    with FakeServer(lambda request: Answer(200, "ok", delay=0.1)) as hook:
        cli("init")
        cli("config", "set", "UseStatusUpdates", "true")
        cli("stores", "add", "slow", "--cart", "webhook", "--url", f"{hook.base_url}/hook",
            "--secret", f"secret={WEBHOOK_SECRET}")
        head = "order_number,order_date,customer_name,customer_email,ship_postal_code,sku,name,quantity\n"
        orders = write(tmp_path / "o.csv", head + "".join(
            f"{7000 + i},2024-05-01,Ann,ann@example.com,12345,SKU,Thing,1\n" for i in range(n)))
        cli("orders", "import", orders, "--store", "slow")
        ships = write(tmp_path / "a.csv", "action,event,order,sku,quantity,tracking,carrier,note\n" + "".join(
            f"ship,,{7000 + i},,,1Z{i:08d},UPS,\n" for i in range(n)))
        cli("apply", ships)

        term.start(statusctl(db_file, "stack", "top", "--interval", "0.5", env={"NO_COLOR": "1"}))
        first = term.wait(lambda s: _queued(s, "slow") == n, history=False)
        assert "No controller is running." in first and "q or Ctrl-C to leave" in first
        controller = subprocess.Popen(
            [sys.executable, "-m", "statusctl", "--db", str(db_file), "stack", "run", "--concurrency", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            seen: list[int] = []
            running = False
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                screen = term.capture(history=False)
                q = _queued(screen, "slow")
                if q is not None and (not seen or seen[-1] != q):
                    seen.append(q)
                running = running or "Controllers: 1 running" in screen
                if q == 0 and f"{n} sent" in screen:
                    break
                time.sleep(0.1)
            assert controller.wait(timeout=WAIT_S) == 0, controller.stderr.read() if controller.stderr else ""
        finally:
            if controller.poll() is None:
                controller.kill()
        last = term.screen
        assert seen[0] == n and seen[-1] == 0, (seen, last)
        assert any(0 < q < n for q in seen), (seen, last)  # the counts moved while it drained
        assert seen == sorted(seen, reverse=True), seen
        assert running, last
        assert f"{n} sent, 0 errors" in last and "█" in last
        term.keys("q")
        term.wait("EXIT=0")
        assert len(hook.requests) == n
