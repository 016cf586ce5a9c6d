"""`serve()`'s configuration checks and start-up failures, and that the rest of statusctl never imports the server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statusctl.domain.errors import ConfigError
from statusctl.oss.app import create_app
from statusctl.oss.server import ENV_SECRET, read_frame, secrets_from_env, serve

from .conftest import OLD_SECRET, SECRET


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SECRET, f"{SECRET}  {OLD_SECRET}")
    assert secrets_from_env() == [SECRET, OLD_SECRET]
    monkeypatch.setenv("OTHER", OLD_SECRET)
    assert secrets_from_env("OTHER", ENV_SECRET) == [OLD_SECRET, SECRET, OLD_SECRET]
    monkeypatch.delenv(ENV_SECRET)
    with pytest.raises(ConfigError, match=ENV_SECRET):
        secrets_from_env()


@pytest.mark.parametrize(
    ("secrets", "message"),
    [([], "at least one webhook secret"), (["whsec_!!!"], "secret #1 is not whsec_"),
     ([SECRET, "whsec_c2hvcnQ="], "secret #2 is shorter than 24 bytes")],
)
def test_bad_secrets_stop_the_start(tmp_path: Path, secrets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        create_app(tmp_path / "oss.db", secrets)
    assert "!!!" not in str(info.value) and "c2hvcnQ" not in str(info.value)  # secrets never shown


def test_serve_refuses_an_unreadable_header(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="header file"):
        serve(db=tmp_path / "oss.db", secrets=[SECRET], header_path=tmp_path / "missing.html")
    (tmp_path / "footer.html").write_text("<p>© Acme</p>", encoding="utf-8")
    assert read_frame(tmp_path / "footer.html", "footer") == "<p>© Acme</p>"
    assert read_frame(None, "footer") == ""


def test_the_cli_and_links_do_not_import_the_server() -> None:
    code = (
        "import sys, statusctl.cli.main, statusctl.oss.links, statusctl.domain.carriers;"
        "bad = [m for m in sys.modules if m.startswith(('starlette', 'uvicorn', 'statusctl.oss.app'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_serve_runs_uvicorn_on_loopback(tmp_path: Path) -> None:
    import os
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "header.html").write_text("<nav>Acme</nav>", encoding="utf-8")
    code = (
        "import pathlib, statusctl.oss.server as s;"
        f"s.serve('127.0.0.1', {port}, pathlib.Path({str(tmp_path / 'oss.db')!r}),"
        f" s.secrets_from_env(), pathlib.Path({str(tmp_path / 'header.html')!r}), None)"
    )
    env = {**os.environ, ENV_SECRET: SECRET}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "the OSS did not start"
                time.sleep(0.05)
        assert answer.json() == {"status": "ok"}
        assert "server" not in answer.headers
        assert "<nav>Acme</nav>" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    assert SECRET not in output and SECRET[6:] not in output
    assert (tmp_path / "oss.db").stat().st_mode & 0o777 == 0o600


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`statusctl oss serve ARGS` as a real process that is expected to stop at once."""
    import os

    env = {**os.environ, ENV_SECRET: SECRET, "STATUSCTL_DB": str(tmp_path / "main.db")}
    return subprocess.run(
        [sys.executable, "-m", "statusctl", "oss", "serve", "--db", str(tmp_path / "oss.db"), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


def _one_sentence(done: subprocess.CompletedProcess[str], code: int, start: str) -> None:
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith(start) and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and not done.stdout


def test_a_port_in_use_is_one_sentence_and_exit_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _serve(tmp_path, "--port", str(port))
    _one_sentence(done, 1, f"Error: Cannot listen on 127.0.0.1:{port}: the port is in use")
    assert not (tmp_path / "oss.db").exists()  # a failed start leaves nothing behind


def test_a_host_that_cannot_be_bound_is_one_sentence_and_exit_1(tmp_path: Path) -> None:
    nonlocal_bind = Path("/proc/sys/net/ipv4/ip_nonlocal_bind")
    if nonlocal_bind.exists() and nonlocal_bind.read_text().strip() != "0":
        pytest.skip("this machine lets a process bind addresses it does not have (ip_nonlocal_bind)")
    _one_sentence(_serve(tmp_path, "--host", "192.0.2.1", "--port", "0"), 1, "Error: Cannot listen on 192.0.2.1:0: ")


@pytest.mark.parametrize("port", ["80000", "-1"])
def test_a_bad_port_is_a_usage_error(tmp_path: Path, port: str) -> None:
    done = _serve(tmp_path, "--port", port)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Invalid value for '--port'" in done.stderr and "0<=x<=65535" in done.stderr


@pytest.mark.parametrize("value", ["*", "proxy.example.com", "127.0.0.1,10.0.0.0/33"])
def test_forwarded_allow_ips_takes_addresses_and_networks_only(tmp_path: Path, value: str) -> None:
    _one_sentence(_serve(tmp_path, "--port", "0", "--forwarded-allow-ips", value), 1,
                  "Error: --forwarded-allow-ips: ")
