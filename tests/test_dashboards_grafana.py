"""govheal.grafana: finding an installed Grafana, the argv/env/port `govheal up` would start it with, and
the one-line hint when there is none. Grafana is not installable here, so a stand-in `grafana` program
(a real process) checks what a Grafana would read: its argv, GF_* settings and the provisioning files
with their ${VAR}s expanded from the environment it was given."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from govheal import grafana, resources
from govheal.stack import http_ok
from govheal.supervise import Supervisor
from govheal.testing.support import http_get


def make_home(path: Path) -> Path:
    (path / "conf").mkdir(parents=True)
    (path / "conf" / "defaults.ini").write_text("[server]\n")
    return path


def make_binary(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def which_in(directory: Path):
    return lambda name: str(directory / name) if (directory / name).exists() else None


def test_finds_homebrew_grafana_through_its_symlink(tmp_path):
    cellar = tmp_path / "Cellar" / "grafana" / "12.3.0"
    real = make_binary(cellar / "bin" / "grafana")
    make_home(cellar / "share" / "grafana")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "grafana").symlink_to(real)
    found = grafana.find(which=which_in(tmp_path / "bin"), env={})
    assert found == grafana.Install(tmp_path / "bin" / "grafana", cellar / "share" / "grafana")
    home = cellar / "share" / "grafana"
    assert found.argv() == [str(tmp_path / "bin" / "grafana"), "server", "--homepath", str(home)]


def test_finds_a_release_tarball_and_the_legacy_grafana_server(tmp_path):
    home = make_home(tmp_path / "grafana-v11.6.0")
    make_binary(home / "bin" / "grafana-server")
    found = grafana.find(which=which_in(home / "bin"), env={})
    assert found == grafana.Install(home / "bin" / "grafana-server", home)
    assert found.argv() == [str(home / "bin" / "grafana-server"), "--homepath", str(home)]


def test_no_grafana_or_no_usable_home_is_none(tmp_path):
    assert grafana.find(which=lambda name: None, env={}) is None
    make_binary(tmp_path / "odd" / "bin" / "grafana")  # a `grafana` that is not Grafana: no conf/defaults.ini
    assert grafana.find(which=which_in(tmp_path / "odd" / "bin"), env={}, system_homes=()) is None
    home = make_home(tmp_path / "usr-share-grafana")  # a deb/rpm install keeps its home apart from the binary
    assert grafana.find(which=which_in(tmp_path / "odd" / "bin"), env={}, system_homes=(home,)).homepath == home


def test_the_homepath_variable_overrides_the_search(tmp_path):
    make_binary(tmp_path / "bin" / "grafana")
    home = make_home(tmp_path / "elsewhere")
    found = grafana.find(which=which_in(tmp_path / "bin"), env={grafana.HOMEPATH_ENV: str(home)})
    assert found is not None and found.homepath == home
    assert grafana.find(which=which_in(tmp_path / "bin"), env={grafana.HOMEPATH_ENV: str(tmp_path / "nope")}) is None


@pytest.mark.parametrize("system,how", [("Darwin", "brew install grafana"), ("Linux", "apt/rpm repository"),
                                        ("FreeBSD", "install Grafana")])
def test_the_hint_when_grafana_is_missing_is_one_line_with_the_install_command(system, how):
    hint = grafana.missing_hint(system)
    assert "\n" not in hint and how in hint and "docs/dashboards.md" in hint and "skipped" in hint


def test_plan_listens_on_a_free_loopback_port_and_keeps_state_in_the_run_dir(tmp_path):
    install = grafana.Install(Path("/opt/g/bin/grafana"), Path("/opt/g"))
    a = grafana.plan(install, tmp_path, prometheus_url="http://127.0.0.1:1", alertmanager_url="http://127.0.0.1:2",
                     scrape_interval="5s", receiver_url="http://127.0.0.1:3")
    b = grafana.plan(install, tmp_path, prometheus_url="http://127.0.0.1:1", alertmanager_url="http://127.0.0.1:2",
                     scrape_interval="5s")
    host, port = a.listen.split(":")
    assert host == "127.0.0.1" and a.env["GF_SERVER_HTTP_ADDR"] == "127.0.0.1" and a.env["GF_SERVER_HTTP_PORT"] == port
    assert b.listen.startswith("127.0.0.1:") and b.env["GF_SERVER_HTTP_PORT"] != "3000"
    for key in ("GF_PATHS_DATA", "GF_PATHS_LOGS", "GF_PATHS_PLUGINS"):
        assert Path(a.env[key]).is_relative_to(tmp_path), key
    assert a.env["GF_PATHS_PROVISIONING"] == str(resources.grafana_provisioning_dir())
    assert a.env["GOVHEAL_GRAFANA_DASHBOARDS"] == str(resources.grafana_dashboards_dir())
    assert a.env["GOVHEAL_SCRAPE_INTERVAL"] == "5s"
    assert a.env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer" and a.env["GF_ANALYTICS_REPORTING_ENABLED"] == "false"
    assert Path(a.env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).is_file()
    assert a.argv == install.argv() and a.health_url == f"http://{a.listen}/api/health"


def test_board_url_carries_the_link_variables(tmp_path):
    install = grafana.Install(Path("/opt/g/bin/grafana"), Path("/opt/g"))
    p = grafana.plan(install, tmp_path, prometheus_url="http://127.0.0.1:1", alertmanager_url="http://127.0.0.1:2",
                     scrape_interval="1s", receiver_url="http://127.0.0.1:3", port=4000)
    url = urlsplit(p.board_url())
    assert url.netloc == "127.0.0.1:4000" and url.path == "/d/govheal-governance"
    assert parse_qs(url.query) == {"var-receiver_url": ["http://127.0.0.1:3"],
                                   "var-alertmanager_url": ["http://127.0.0.1:2"]}  # empty runbook base left out
    assert p.board_url("govheal-alert-bridge").split("?")[0].endswith("/d/govheal-alert-bridge")


# A stand-in for `grafana server --homepath H`: checks its argv, reads the provisioning files the way
# Grafana does (${VAR} from its environment; an unset one would be empty), and serves /api/health.
FAKE_GRAFANA = r'''#!{python}
import json, os, re, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

assert sys.argv[1:3] == ["server", "--homepath"], sys.argv
assert Path(sys.argv[3], "conf", "defaults.ini").is_file()
env = os.environ
prov = Path(env["GF_PATHS_PROVISIONING"])
seen = {{}}
for f in sorted(prov.glob("*/*.yaml")):
    text = "\n".join(l for l in f.read_text().splitlines() if not l.lstrip().startswith("#"))
    for var in re.findall(r"\$\{{(\w+)\}}", text):
        seen[var] = env.get(var, "")
Path(env["GF_PATHS_DATA"]).mkdir(parents=True, exist_ok=True)
Path(env["GF_PATHS_DATA"], "seen.json").write_text(json.dumps(seen))

class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = json.dumps({{"database": "ok", "version": "stand-in"}}).encode()
        self.send_response(200 if self.path == "/api/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer((env["GF_SERVER_HTTP_ADDR"], int(env["GF_SERVER_HTTP_PORT"])), H).serve_forever()
'''


def test_the_planned_child_starts_provisioned_from_the_committed_files(tmp_path):
    home = make_home(tmp_path / "grafana-home")
    binary = make_binary(tmp_path / "bin" / "grafana", FAKE_GRAFANA.format(python=sys.executable))
    install = grafana.find(which=which_in(tmp_path / "bin"), env={grafana.HOMEPATH_ENV: str(home)})
    assert install is not None
    p = grafana.plan(install, tmp_path / "run", prometheus_url="http://127.0.0.1:9", alertmanager_url="http://127.0.0.1:8",
                     scrape_interval="1s")
    sup = Supervisor(out=lambda line: None)
    try:
        sup.start(p.child(dict(os.environ), ready=lambda: http_ok(p.health_url)))
        assert http_get(p.health_url)[0] == 200
        assert sup.children[0].url == p.board_url() and sup.children[0].argv[0] == str(binary)
    finally:
        sup.stop_all()
    seen = json.loads((tmp_path / "run" / "grafana-data" / "seen.json").read_text())
    boards = str(resources.grafana_dashboards_dir())
    assert seen == {"GOVHEAL_PROMETHEUS_URL": "http://127.0.0.1:9", "GOVHEAL_ALERTMANAGER_URL": "http://127.0.0.1:8",
                    "GOVHEAL_SCRAPE_INTERVAL": "1s", "GOVHEAL_GRAFANA_DASHBOARDS": boards}
