"""``govheal receiver``: serve the webhook receiver with waitress until SIGTERM/SIGINT, then stop gracefully."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import time
from collections.abc import Callable

HELP = "serve the Alertmanager webhook receiver (remediation, notifications, dead-man's switch)"

# How long a thread holds the GIL before another that waits may run (CPython: 5 ms). waitress's event loop
# thread hands every request to a request thread and back; with the default each handoff can wait 5 ms for a
# busy thread, and 20 governance page clients saw p99 62 ms at 100 agents. 1 ms: p99 23 ms and more views per
# second (0.5 and 0.2 ms switch so often it costs throughput; docs/benchmarks.md, "Governance").
GIL_SWITCH_INTERVAL = 0.001
log = logging.getLogger("govheal.receiver")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="govheal.yaml (default: $GOVHEAL_CONFIG, ./govheal.yaml, the demo fleet)")
    p.add_argument("--listen", help="HOST:PORT to bind (default: listen.receiver from the config, 127.0.0.1)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


class Redact(logging.Filter):
    """Replace secrets in every log record, whichever module logged it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            for s in self.secrets:
                text = text.replace(s, "<redacted>")
            record.msg, record.args = text, None
        return True


class RedactingFormatter(logging.Formatter):
    """Redact the whole formatted line, traceback included: a library's debug line (urllib3 logs each
    request path, i.e. the Discord webhook token and the Telegram bot token) or an exception's text."""

    def __init__(self, fmt: str, secrets: list[str], redact: Callable[[str], str] | None = None) -> None:
        super().__init__(fmt)
        self.secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for s in self.secrets:
            text = text.replace(s, "<redacted>")
        return self.redact(text) if self.redact else text


def setup_logging(level: str, secrets: list[str], redact: Callable[[str], str] | None = None) -> None:
    """One stderr handler; ``secrets`` (literal) and ``redact`` (e.g. the channel secrets) never reach it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
                                            secrets, redact))
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    from govheal.errors import UsageError
    from govheal.state import State
    from govheal.types import parse_listen, split_listen
    from webhook_receiver.app import create_app
    from webhook_receiver.auth import load_token
    from webhook_receiver.bridge.secrets import Secrets
    from webhook_receiver.server import make_server

    config = args.load_config(args.config)  # handed in by govheal/cli.py (govheal/seams.py)
    token = load_token(config)
    secrets = Secrets.load(config)
    setup_logging(args.log_level, [token], secrets.redact)
    try:
        host, port = split_listen(parse_listen(args.listen or config.listen.receiver))
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    if not _is_loopback(host):
        log.warning("listening on non-loopback address %s: anyone who can reach it needs only the token", host)
    # One state object for the process, and the state dir is ours alone: a second receiver on it would act
    # on and announce every alert twice (the lock goes with the process, even on SIGKILL).
    state = State.open(config.state_path)
    try:
        state.lock("receiver", listen=f"{host}:{port}", config=str(config.source or ""))
    except UsageError:
        state.close()
        raise
    app = create_app(config, token=token, start=False, state=state)
    svc = app.extensions["govheal"]
    try:
        server = make_server(app, config, host, port, on_error=svc.count_server_error)
    except OSError as exc:
        state.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another with --listen "
                         "HOST:PORT or listen.receiver in the config (port 0 = any free port)") from None
    bound = server.effective_port
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)  # this process serves HTTP from here on
    state.describe_lock("receiver", listen=f"http://{host}:{bound}")
    svc.start()
    log.info("receiver listening on http://%s:%s node=%s workers=%d threads=%d", host, bound, config.node,
             config.receiver.workers, config.receiver.threads)

    def stop(signum: int, _frame: object) -> None:
        log.info("receiver: %s received, stopping", signal.Signals(signum).name)
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = time.monotonic()
    try:
        server.run()  # returns after SystemExit from the handler (waitress shuts its task threads down)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
        svc.stop(timeout=5.0)
        state.close()
        log.info("receiver stopped after %.0f s; pending work stays in the inbox", time.monotonic() - started)
    return 0
