"""govheal/endpoints.py: config keys win; else what a running `govheal up` recorded; a stale record is ignored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from govheal import endpoints
from govheal.config import Config
from govheal.endpoints import NoEndpoint, RecordedStack
from govheal.seams import parse_config


def config(tmp_path: Path, extra: str = "") -> Config:
    path = tmp_path / "govheal.yaml"
    path.write_text(f"state_dir: state\n{extra}\nagents: [{{name: A, health: {{url: 'http://127.0.0.1:1/h'}}}}]\n")
    return parse_config(path.read_text(), source=path)


def stack(pid: int | None = None) -> RecordedStack:
    return RecordedStack(pid=pid or os.getpid(), prometheus="http://127.0.0.1:7001",
                         alertmanagers=["http://127.0.0.1:7002", "http://127.0.0.1:7003"])


def test_nothing_known_says_which_key_to_set_and_that_up_records_it(tmp_path):
    cfg = config(tmp_path)
    with pytest.raises(NoEndpoint) as info:
        endpoints.prometheus_for(cfg, requests.Session())
    assert str(info.value) == (
        f"no Prometheus URL known: set prometheus.url in {cfg.source}, or start the stack with `govheal up --config "
        f"{cfg.source}` (it records what it started in {tmp_path / 'state' / 'endpoints.json'})")
    with pytest.raises(NoEndpoint, match=r"set alertmanager\.urls in"):
        endpoints.alertmanagers_for(cfg, requests.Session())


def test_a_running_up_is_found_and_forgotten_when_it_stops(tmp_path):
    cfg = config(tmp_path)
    path = endpoints.record(cfg, stack())
    assert (path.stat().st_mode & 0o777) == 0o600
    found = endpoints.resolve(cfg)
    assert found.prometheus == "http://127.0.0.1:7001"
    assert found.alertmanagers == ("http://127.0.0.1:7002", "http://127.0.0.1:7003")
    assert found.prometheus_from.startswith(f"recorded by govheal up pid {os.getpid()} in ")
    ams = endpoints.alertmanagers_for(cfg, requests.Session())
    assert [m.url for m in ams.members] == list(found.alertmanagers)
    endpoints.forget(cfg, os.getpid() + 1)  # another up's record is not ours to remove
    assert path.exists()
    endpoints.forget(cfg, os.getpid())
    assert not path.exists() and endpoints.resolve(cfg).prometheus is None


def test_a_record_left_by_a_killed_up_is_ignored(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cfg = config(tmp_path)
    endpoints.record(cfg, stack(pid=dead.pid))
    assert endpoints.recorded(cfg) is None and endpoints.resolve(cfg).alertmanagers == ()


def test_config_keys_win_over_the_record_each_on_its_own(tmp_path):
    cfg = config(tmp_path, "prometheus: {url: 'http://127.0.0.1:9999'}")
    endpoints.record(cfg, stack())
    found = endpoints.resolve(cfg)
    assert found.prometheus == "http://127.0.0.1:9999" and found.prometheus_from.startswith("prometheus.url in ")
    assert found.alertmanagers == ("http://127.0.0.1:7002", "http://127.0.0.1:7003")


def test_a_corrupt_record_is_ignored(tmp_path):
    cfg = config(tmp_path)
    endpoints.record_path(cfg).parent.mkdir(parents=True)
    endpoints.record_path(cfg).write_text("{not json")
    assert endpoints.recorded(cfg) is None
