"""Faults of the machine under a running controller: a disk that fills and frees, a stop signal
while the database is locked or full, the database file deleted or replaced, and runs cut short.

Every controller is a real `python -m statusctl … stack run` process against a
real receiver; waits are hang guards. The full disk is a small tmpfs (root
only: elsewhere the test skips and says why).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ..stackhelpers import (
    STORE,
    Gate,
    Hook,
    Ran,
    explain,
    fill,
    finish,
    hook_url,
    query,
    run_process,
    serve,
    setup_db,
    spawn,
    stack_rows,
)
from ..test_controller_processes import signal_taken, wait_until
from .conftest import Figures
from .test_environment import GUARD, drain_everything, fill_disk, locked, one_sentence, small_disk

pytestmark = pytest.mark.slow
# Far below the default busy timeout (30 s), which a stopping controller used to wait out, more than once.
STOPS_WITHIN = 12.0


def stopped_within(proc: subprocess.Popen[str], seconds: float) -> float:
    """Seconds until `proc` exited (fails if it is still running after `seconds`)."""
    started = time.monotonic()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {seconds:.0f} s after the signal") from None
    return time.monotonic() - started


class Followed:
    """A child whose stderr is read line by line while it runs (to wait for a warning)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def stderr(self) -> str:
        return "".join(self.lines)

    def finish(self, guard: float = GUARD) -> Ran:
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(guard)
        self.thread.join(guard)
        return Ran(self.proc.returncode, out, self.stderr())


def warnings_only(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line]
    assert "Traceback" not in stderr, stderr
    assert all(line.startswith("Warning: ") for line in lines), stderr
    return lines


# -- a stop signal while the database is locked -----------------------------------------------


def test_sigterm_stops_a_watcher_within_seconds_while_another_process_holds_the_lock(
        db_file: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures) -> None:
    monkeypatch.delenv("STATUSCTL_BUSY_TIMEOUT", raising=False)  # the default 30 s
    with serve(Hook(pause=0.05)) as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "5"})
        orders = fill(db_file, records=200, orders=40)
        uids = {u for us in orders.values() for u in us}
        watcher = spawn(db_file, "stack", "run", "--watch", "--json")
        try:
            assert hook.wait_for(lambda h: len(h.delivered()) >= 10, GUARD), explain(watcher)
            with locked(db_file):
                time.sleep(1.0)  # its sends finish; writing their outcomes waits for the lock
                watcher.send_signal(signal.SIGTERM)
                took = stopped_within(watcher, STOPS_WITHIN)
            ran = finish(watcher, GUARD)
        finally:
            if watcher.poll() is None:
                watcher.kill()
        figures("watcher: SIGTERM while the lock is held", {"seconds to stop (busy timeout 30 s)": round(took, 2)})
        # It could not write its last outcomes: cut short, and says so.
        assert ran.code == 128 + signal.SIGTERM, ran.stderr
        report = json.loads(ran.stdout)
        assert report["interrupted"] is True and report["ok"] is False
        assert any("stopped waiting for it because it is stopping" in w for w in warnings_only(ran.stderr)), ran.stderr
        drain_everything(db_file, hook, uids)  # the leases come back: nothing lost


def test_a_second_signal_stops_a_watcher_at_once_while_the_lock_is_held_and_sends_hang(
        db_file: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures) -> None:
    monkeypatch.delenv("STATUSCTL_BUSY_TIMEOUT", raising=False)
    gate = Gate(hold=2, lose=True, guard=GUARD)
    with serve(Hook()) as (hook, server):
        hook.before = gate
        setup_db(db_file, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "5"})
        orders = fill(db_file, records=6, orders=6)
        watcher = spawn(db_file, "stack", "run", "--watch", "--json", "--concurrency", "2")
        try:
            assert wait_until(lambda: gate.count() == 2), explain(watcher)
            with locked(db_file):
                watcher.send_signal(signal.SIGTERM)  # waits for its two hanging sends
                signal_taken(watcher.pid, signal.SIGTERM)
                assert watcher.poll() is None
                watcher.send_signal(signal.SIGINT)  # now: cancel them, give up on the locked database
                took = stopped_within(watcher, STOPS_WITHIN)
                figures("watcher: second signal, lock held, sends hanging", {"seconds to stop": round(took, 2)})
            ran = finish(watcher, GUARD)
        finally:
            if watcher.poll() is None:
                watcher.kill()
            gate.open()
        assert ran.code == 128 + signal.SIGTERM, ran.stderr
        assert json.loads(ran.stdout)["interrupted"] is True
        warnings_only(ran.stderr)
        hook.before = None
        drain_everything(db_file, hook, {u for us in orders.values() for u in us})


# -- a disk that fills, then frees -----------------------------------------------------------


def test_a_watcher_on_a_full_disk_gives_its_wal_back_says_so_and_carries_on_when_space_is_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with small_disk(tmp_path / "disk", "24m") as disk:
        db = disk / "statusctl.db"
        monkeypatch.setenv("STATUSCTL_DB", str(db))
        with serve(Hook(pause=0.02)) as (hook, server):
            setup_db(db, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "5"})
            orders = fill(db, records=1500, orders=150)
            uids = {u for us in orders.values() for u in us}
            watcher = spawn(db, "stack", "run", "--watch", "--json")
            followed = Followed(watcher)
            try:
                assert hook.wait_for(lambda h: len(h.delivered()) >= 50, GUARD), explain(watcher)
                filler = fill_disk(disk, 0)
                assert wait_until(lambda: "is full" in followed.stderr(), GUARD), "no warning about the full disk"
                time.sleep(3)  # a few turns on the full disk
                assert watcher.poll() is None, f"the watcher gave up on a full disk: {followed.stderr()}"
                filler.unlink()
                assert hook.wait_for(lambda h: h.delivered() >= uids, GUARD), "the watcher did not carry on"
                watcher.send_signal(signal.SIGTERM)
                ran = followed.finish()
            finally:
                if watcher.poll() is None:
                    watcher.kill()
            assert ran.code == 0, ran.stderr
            warnings = warnings_only(ran.stderr)
            full = [w for w in warnings if "is full" in w]
            assert full and all("Trying again in" in w for w in full), ran.stderr
            assert any("room again" in w and "gave back" in w and "MB of write-ahead log" in w
                       for w in warnings) or any("Gave back" in w for w in full), ran.stderr
            assert stack_rows(db) == []


def test_sigterm_stops_a_watcher_within_seconds_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               figures: Figures) -> None:
    with small_disk(tmp_path / "disk", "16m") as disk:
        db = disk / "statusctl.db"
        monkeypatch.setenv("STATUSCTL_DB", str(db))
        with serve(Hook(pause=0.02)) as (hook, server):
            setup_db(db, {STORE: hook_url(server)}, settings={"StackLeaseSeconds": "3"})
            orders = fill(db, records=600, orders=60)
            uids = {u for us in orders.values() for u in us}
            watcher = spawn(db, "stack", "run", "--watch", "--json")
            followed = Followed(watcher)
            try:
                assert hook.wait_for(lambda h: len(h.delivered()) >= 20, GUARD), explain(watcher)
                filler = fill_disk(disk, 0)
                # Several failed turns: the wait between them has grown past what a stop may take.
                assert wait_until(lambda: followed.stderr().count("is full") >= 4, GUARD), followed.stderr()
                watcher.send_signal(signal.SIGTERM)
                took = stopped_within(watcher, STOPS_WITHIN)
                figures("watcher: SIGTERM on a full disk", {"seconds to stop": round(took, 2)})
                ran = followed.finish()
            finally:
                if watcher.poll() is None:
                    watcher.kill()
            # Records are left: exit 3 after a normal stop, 143 when the stop could not write its outcomes.
            assert ran.code in (3, 128 + signal.SIGTERM), ran.stderr
            warnings_only(ran.stderr)
            filler.unlink()
            drain_everything(db, hook, uids)


# -- the database file deleted or replaced under a watcher --------------------------------------


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_watcher_whose_database_file_is_deleted_or_replaced_stops_with_a_sentence(db_file: Path, how: str) -> None:
    with serve(Hook(pause=0.05)) as (hook, server):
        setup_db(db_file, {STORE: hook_url(server)})
        backup = db_file.with_name("backup.db")
        fill(db_file, records=400, orders=40)
        shutil.copyfile(db_file, backup)  # a copy taken while no one writes (the WAL was checkpointed on close)
        watcher = spawn(db_file, "stack", "run", "--watch")
        try:
            assert hook.wait_for(lambda h: len(h.delivered()) >= 10, GUARD), explain(watcher)
            if how == "deleted":
                db_file.unlink()
            else:
                os.replace(backup, db_file)  # an operator restoring a backup over the live file
            stopped_within(watcher, STOPS_WITHIN)
            ran = finish(watcher, GUARD)
            sent_by_then = len(hook.delivered())
        finally:
            if watcher.poll() is None:
                watcher.kill()
        errors = [line for line in ran.stderr.splitlines() if line.startswith("Error: ")]
        assert ran.code == 1 and len(errors) == 1, ran.stderr
        assert "Traceback" not in ran.stderr
        assert str(db_file) in errors[0] and "was deleted or replaced by another file" in errors[0], ran.stderr
        time.sleep(1)
        assert len(hook.delivered()) == sent_by_then, "something kept sending"
    if how == "deleted":
        # No command makes a new, empty database beside the deleted one's write-ahead log.
        for args in (["stack", "status"], ["stack", "run"], ["init"]):
            one_sentence(run_process(db_file, *args), str(db_file), "is missing but its statusctl.db-wal")
        assert not db_file.exists()
    else:
        # The restored file took nothing from the stopped watcher's write-ahead log.
        assert query(db_file, "SELECT * FROM pragma_integrity_check")[0]["integrity_check"] == "ok"
        assert len(stack_rows(db_file)) == 400
        assert run_process(db_file, "stack", "status", "--json").code == 0


# -- runs cut short by signals report it --------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_one_shot_run_cut_short_by_two_signals_exits_non_zero_and_says_what_is_left(db_file: Path, sig: int) -> None:
    gate = Gate(hold=2, lose=True, guard=GUARD)
    with serve(Hook()) as (hook, server):
        hook.before = gate
        setup_db(db_file, {STORE: hook_url(server)})
        fill(db_file, records=6, orders=6)
        for output in (["--json"], []):
            gate.held.clear()
            run = spawn(db_file, "stack", "run", "--concurrency", "2", *output)
            try:
                assert wait_until(lambda: gate.count() == 2), explain(run)
                run.send_signal(sig)
                signal_taken(run.pid, sig)
                run.send_signal(sig)
                ran = finish(run, GUARD)
            finally:
                if run.poll() is None:
                    run.kill()
            assert ran.code == 128 + sig, (ran.stdout, ran.stderr)
            assert "Traceback" not in ran.stderr
            if output:
                report = json.loads(ran.stdout)
                assert report["interrupted"] is True and report["ok"] is False
                assert report["stores"][STORE]["left"] == 6
            else:
                assert "Nothing was due" not in ran.stdout
                assert f"Interrupted by {signal.Signals(sig).name}: 6 record(s) left on the stack." in ran.stdout
        assert len(stack_rows(db_file)) == 6


@pytest.mark.parametrize("records", [6, 2])
def test_a_one_shot_run_stopped_by_one_sigterm_finishes_its_sends_exits_143_and_is_not_ok(db_file: Path,
                                                                                          records: int) -> None:
    # With 2 records both are in flight at the signal and settle: nothing is left, yet the run was cut
    # short (exit 143), and its "ok" said true beside that exit code.
    gate = Gate(hold=2, guard=GUARD)
    with serve(Hook()) as (hook, server):
        hook.before = gate
        setup_db(db_file, {STORE: hook_url(server)})
        fill(db_file, records=records, orders=records)
        run = spawn(db_file, "stack", "run", "--concurrency", "2", "--json")
        try:
            assert wait_until(lambda: gate.count() == 2), explain(run)
            run.send_signal(signal.SIGTERM)
            signal_taken(run.pid, signal.SIGTERM)
            gate.open()
            ran = finish(run, GUARD)
        finally:
            if run.poll() is None:
                run.kill()
    assert ran.code == 128 + signal.SIGTERM == 143, ran.stderr
    report = json.loads(ran.stdout)
    assert report["sent"] == 2 and report["interrupted"] is True and report["ok"] is False
    assert report["stores"][STORE]["left"] == records - 2 == len(stack_rows(db_file))


def test_the_signal_exit_codes_are_named_once() -> None:
    from statusctl.domain.errors import ExitCode

    assert ExitCode.for_signal(signal.SIGINT) is ExitCode.INTERRUPTED == 130
    assert ExitCode.for_signal(signal.SIGTERM) is ExitCode.TERMINATED == 143
    assert ExitCode.CLOSED_PIPE == 141
    assert ExitCode.for_signal(signal.SIGHUP) is ExitCode.HANGUP == 129
    assert ExitCode.for_signal(signal.SIGUSR1) == 128 + signal.SIGUSR1
