"""``govheal exporter``: serve the fleet's health as Prometheus metrics."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

HELP = "serve /metrics (agent up/healthy/resources/probe results) and /healthz for Prometheus"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="govheal.yaml (default: $GOVHEAL_CONFIG, ./govheal.yaml, the bundled demo)")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="address to listen on (default: listen.exporter from the config; port 0 = any free port)")


def run(args: argparse.Namespace) -> int:
    from exporter.reader import FleetReader
    from exporter.server import make_app, make_registry, serve
    from govheal.errors import UsageError
    from govheal.serving import ServingReader
    from govheal.store import db_path
    from govheal.switches import SwitchReader
    from govheal.types import parse_listen, split_listen

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = args.load_config(args.config)  # handed in by govheal/cli.py (govheal/seams.py)
    listen = config.listen.exporter
    if args.listen:
        try:
            listen = parse_listen(args.listen)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
    host, port = split_listen(listen)
    switches = SwitchReader(db_path(config.state_path))  # opened on the first process round
    serving = ServingReader(db_path(config.state_path))
    reader = FleetReader(config, switches=switches.kinds, serving=serving.all)
    try:
        server = serve(make_app(make_registry(reader.read)), host, port)
    except OSError as exc:
        reader.close()
        switches.close()
        serving.close()
        raise UsageError(f"cannot listen on {listen}: {exc.strerror or exc}; pick another with --listen "
                         "HOST:PORT (port 0 = any free port)") from None
    reader.start()  # one round of process reads and probes first: the first scrape has real values
    bound = server.server_address
    shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
    print(f"govheal exporter: {len(config.agents)} agents from {config.source}; "
          f"metrics on http://{shown}:{bound[1]}/metrics", flush=True)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        reader.close()
        switches.close()
        serving.close()
    print("govheal exporter: stopped", file=sys.stderr, flush=True)
    return 0
