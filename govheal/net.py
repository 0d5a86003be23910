"""Loopback ports and a plain HTTP probe for govheal's own components (exporter, receiver, agents).

Prometheus and Alertmanager are spoken to only through govheal/client.py.
"""

from __future__ import annotations

import socket
import urllib.request

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Nothing listens on it. SO_REUSEADDR as the servers use it: connections of a just-stopped run
    linger in TIME_WAIT for a minute, and must not read as "taken by another program"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """``url`` answers 2xx within ``timeout`` (an agent's /health, the exporter's or receiver's /healthz)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - URLs from the config or ours
            return 200 <= resp.status < 300
    except (OSError, ValueError):
        return False
