"""Bad input to every CLI command: a message naming the thing and the fix, the right exit code, no traceback.

Each case runs ``python -m govheal ...`` as a subprocess, as an operator would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

AGENTS = """agents:
  - name: GG
    health: {url: "http://127.0.0.1:9/health"}
    restart: {strategy: command, argv: ["/bin/true"]}
"""


@dataclass
class Case:
    argv: list[str]
    code: int
    says: list[str]  # the thing (file, field, flag) and the fix
    config: str | None = None  # written to {tmp}/govheal.yaml and passed as --config
    token: bool = True  # GOVHEAL_WEBHOOK_TOKEN set


def config(state_dir: str = "state", telemetry: str = "telemetry/autoheal.log", receiver: str = "") -> str:
    return f"node: n1\nstate_dir: {state_dir}\ntelemetry_log: {telemetry}\n{receiver}\n{AGENTS}"


CASES = {
    "exporter-listen-nonsense": Case(["exporter", "--listen", "nonsense"], 2, ["--listen", "HOST:PORT"], config()),
    "exporter-listen-taken": Case(["exporter", "--listen", "{busy}"], 2,
                                  ["cannot listen on {busy}", "Address already in use", "--listen"], config()),
    "receiver-listen-nonsense": Case(["receiver", "--listen", "nonsense"], 2, ["--listen", "HOST:PORT"], config()),
    "receiver-listen-taken": Case(["receiver", "--listen", "{busy}"], 2,
                                  ["cannot listen on {busy}", "Address already in use", "--listen"], config()),
    "receiver-no-token": Case(["receiver", "--listen", "127.0.0.1:0"], 2,
                              ["no webhook token", "receiver.token_file", "GOVHEAL_WEBHOOK_TOKEN"], config(),
                              token=False),
    "receiver-token-file-missing": Case(["receiver", "--listen", "127.0.0.1:0"], 2,
                                        ["receiver.token_file", "does not exist", "openssl rand"],
                                        config(receiver="receiver: {token_file: nope/token}"), token=False),
    "receiver-token-file-is-dir": Case(["receiver", "--listen", "127.0.0.1:0"], 2,
                                       ["receiver.token_file", "is a directory", "point it at the token file"],
                                       config(receiver="receiver: {token_file: .}"), token=False),
    "receiver-state-dir-under-a-file": Case(["receiver", "--listen", "127.0.0.1:0"], 2,
                                            ["state_dir", "/dev/null is not a directory", "this user can write"],
                                            config(state_dir="/dev/null/x")),
    "receiver-discord-url-missing": Case(["receiver", "--listen", "127.0.0.1:0"], 2,
                                         ["notifications.channels.ops", "GOVHEAL_DISCORD_WEBHOOK_URL",
                                          "webhook_url_file", "enabled: false"],
                                         config(receiver="notifications: {channels: {ops: {type: discord}}}")),
    "receiver-telegram-token-file-is-dir": Case(["receiver", "--listen", "127.0.0.1:0"], 2,
                                                ["notifications.channels.tg.bot_token_file", "create the file"],
                                                config(receiver="notifications: {channels: {tg: {type: telegram, "
                                                                "bot_token_file: ., chat_id: '1'}}}")),
    "restart-unknown-agent": Case(["restart", "NoSuchAgent"], 2, ["unknown agent 'NoSuchAgent'", "known agents: GG"],
                                  config()),
    "restart-state-dir-under-a-file": Case(["restart", "GG", "--dry-run"], 2,
                                           ["state_dir", "/dev/null is not a directory", "set state_dir"],
                                           config(state_dir="/dev/null/x")),
    "restart-telemetry-under-a-file": Case(["restart", "GG"], 2,
                                           ["telemetry_log", "/dev/null is not a directory", "set telemetry_log"],
                                           config(telemetry="/dev/null/autoheal.log")),
    "demo-agent-port-out-of-range": Case(["demo-agent", "--name", "X", "--port", "99999", "--pidfile", "x.pid"], 2,
                                         ["--port", "'99999' is not a port", "0-65535"]),
    "demo-agent-pidfile-under-a-file": Case(["demo-agent", "--name", "X", "--port", "0", "--pidfile",
                                             "/dev/null/x.pid"], 2, ["/dev/null is not a directory", "pid files"]),
    "check-passwd": Case(["check", "--config", "/etc/passwd"], 2, ["/etc/passwd", "'agents' list"]),
    "check-config-is-dir": Case(["check", "--config", "{tmp}"], 2, ["it is a directory", "--config"]),
    "check-config-missing": Case(["check", "--config", "{tmp}/missing.yaml"], 2,
                                 ["missing.yaml", "file not found", "--config"]),
    "check-state-dir-under-a-file": Case(["check"], 2, ["state_dir: /dev/null is not a directory", "point it at"],
                                         config(state_dir="/dev/null/x")),
    "check-telemetry-under-a-file": Case(["check"], 2, ["telemetry_log: /dev/null is not a directory"],
                                         config(telemetry="/dev/null/t/autoheal.log")),
    "up-state-dir-under-a-file": Case(["up"], 2, ["/dev/null is not a directory", "state_dir"],
                                      config(state_dir="/dev/null/x")),
}


@pytest.fixture(scope="module")
def busy() -> Iterator[str]:
    """A loopback port something else is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_a_clear_message_without_traceback(name: str, tmp_path: Path, busy: str) -> None:
    case = CASES[name]

    def fill(text: str) -> str:
        return text.replace("{busy}", busy).replace("{tmp}", str(tmp_path))

    argv = [fill(a) for a in case.argv]
    if case.config is not None:
        (tmp_path / "govheal.yaml").write_text(case.config)
        argv += ["--config", str(tmp_path / "govheal.yaml")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVHEAL_")}
    if case.token:
        env["GOVHEAL_WEBHOOK_TOKEN"] = "cli-errors-token"
    out = subprocess.run([sys.executable, "-m", "govheal", *argv], capture_output=True, text=True, timeout=60,
                         env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, check=False)
    text = out.stdout + out.stderr
    assert "Traceback" not in text, text
    assert out.returncode == case.code, text
    for words in case.says:
        assert fill(words) in out.stderr, out.stderr
    assert "cli-errors-token" not in text


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`govheal check | head -1`: stdout closed before govheal writes."""
    proc = subprocess.Popen([sys.executable, "-m", "govheal", "check"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    proc.stdout.close()
    _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert proc.returncode == 141
