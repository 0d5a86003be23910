"""launchd plists and systemd user units: parsed and checked key by key on every OS (plutil -lint on macOS,
systemd-analyze verify where it can run), installed through launchctl/systemctl doubles that behave like the
real ones (an asynchronous bootout), refused clearly where the tool does not exist; the committed examples in
launchd/ and examples/systemd/ are what the code writes (GOVHEAL_REGEN_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import os
import platform
import plistlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from govheal.cli import main
from govheal.deploy import examples, launchd, services, systemd
from govheal.errors import GovhealError, UsageError
from govheal.seams import parse_config

REPO = Path(__file__).resolve().parent.parent
SECRET = "tok3n-never-inline-0123456789"


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVHEAL_WEBHOOK_TOKEN", SECRET)  # the environment of the shell that renders
    (tmp_path / "govheal.yaml").write_text("""
node: n1
state_dir: state
listen: {exporter: 127.0.0.1:19826, receiver: 127.0.0.1:19827}
receiver: {token_file: secrets/webhook_token}
reports: {slots: ["09:00", "21:00"]}
agents:
  - name: GG
    health: {url: "http://127.0.0.1:9/health"}
""")
    from govheal.seams import load_config

    return load_config(tmp_path / "govheal.yaml")


def plan(cfg):
    return services.plan(cfg, grafana=None)


# ---------------------------------------------------------------------------------------------- launchd

LONG = {"exporter", "autoheal", "prometheus", "alertmanager"}


def check_plist(name: str, data: bytes) -> dict:
    d = plistlib.loads(data)
    assert d["Label"] + ".plist" == name, "Label equals the file name"
    argv = d["ProgramArguments"]
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert argv[0].startswith("/"), f"{name}: absolute program path (launchd expands nothing)"
    for a in argv:
        value = a.split("=", 1)[1] if a.startswith("--") and "=" in a else a
        if "/" in value and not value.startswith("http"):
            assert value.startswith("/"), f"{name}: {a} is not absolute"
    assert d["StandardOutPath"].startswith("/") and d["StandardErrorPath"].startswith("/")
    assert d["WorkingDirectory"].startswith("/")
    assert d["EnvironmentVariables"]["PYTHONUNBUFFERED"] == "1" and "/usr/bin" in d["EnvironmentVariables"]["PATH"]
    assert not [k for k in d["EnvironmentVariables"] if re.search("TOKEN|SECRET|WEBHOOK|CHAT", k)]
    return d


def test_every_plist_parses_and_follows_the_convention(cfg) -> None:
    rendered = launchd.render(plan(cfg))
    assert set(rendered) == {"com.02luka.cls.exporter.plist", "com.02luka.cls.autoheal.plist",
                             "com.02luka.cls.prometheus.plist", "com.02luka.cls.alertmanager.plist",
                             "com.02luka.cls.daily.plist"}
    for name, data in rendered.items():
        d = check_plist(name, data)
        assert SECRET.encode() not in data, "secrets by file path, never inline"
        if d["Label"].rsplit(".", 1)[1] in LONG:
            assert d["KeepAlive"] is True and d["RunAtLoad"] is True and d["ThrottleInterval"] == 10
        else:
            assert "KeepAlive" not in d and d["ProcessType"] == "Background"
            assert d["StartCalendarInterval"] == [{"Hour": 9, "Minute": 0}, {"Hour": 21, "Minute": 0}]
            assert d["ProgramArguments"][2:5] == ["govheal", "report", "daily"]


def test_the_receiver_is_com_02luka_cls_autoheal_with_its_config_and_fixed_port(cfg) -> None:
    d = plistlib.loads(launchd.render(plan(cfg))["com.02luka.cls.autoheal.plist"])
    assert d["ProgramArguments"][1:] == ["-m", "govheal", "receiver", "--config", str(cfg.source), "--listen",
                                         "127.0.0.1:19827"]


def test_prometheus_and_alertmanager_run_the_rendered_configs_with_explicit_flags(cfg) -> None:
    p = plan(cfg)
    prom = p.service("prometheus").argv
    am = p.service("alertmanager").argv
    assert any(a.startswith("--storage.tsdb.path=/") for a in prom) and "--web.listen-address=127.0.0.1:9829" in prom
    assert any(a.startswith("--storage.path=/") for a in am) and "--cluster.listen-address=" in am
    services.write_runtime(p)
    am_yml = (cfg.path(".govheal/deploy/etc/alertmanager.yml")).read_text()
    assert str(cfg.path("secrets/webhook_token")) in am_yml and SECRET not in am_yml
    assert (cfg.path("secrets/webhook_token").stat().st_mode & 0o777) == 0o600


@pytest.mark.skipif(platform.system() != "Darwin", reason="plutil exists on macOS only; plistlib checks the same "
                                                         "files on every OS above")
def test_plutil_lint_accepts_every_plist(cfg, tmp_path) -> None:
    for path in launchd.write(plan(cfg), tmp_path / "agents"):
        done = subprocess.run(["plutil", "-lint", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


class FakeLaunchctl:
    """launchctl's behaviour that matters: print fails for an unloaded label; bootout returns before the job is
    gone (print keeps succeeding a few times); a bootstrap too soon after fails with 5: Input/output error."""

    def __init__(self, loaded: set[str], linger: int = 3, flaky: int = 1) -> None:
        self.loaded = set(loaded)
        self.leaving: dict[str, int] = {}
        self.linger = linger
        self.flaky = flaky
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        verb = argv[1]
        if verb == "print":
            label = argv[2].split("/", 2)[2]
            if label in self.leaving:
                self.leaving[label] -= 1
                if self.leaving[label] <= 0:
                    del self.leaving[label]
                return subprocess.CompletedProcess(argv, 0)
            return subprocess.CompletedProcess(argv, 0 if label in self.loaded else 113)
        if verb == "bootout":
            label = argv[2].split("/", 2)[2]
            self.loaded.discard(label)
            self.leaving[label] = self.linger
            return subprocess.CompletedProcess(argv, 0)
        if verb == "bootstrap":
            if self.flaky:
                self.flaky -= 1
                return subprocess.CompletedProcess(argv, 5, "", "Bootstrap failed: 5: Input/output error")
            self.loaded.add(Path(argv[3]).stem)
            return subprocess.CompletedProcess(argv, 0)
        raise AssertionError(argv)


def test_install_waits_for_the_asynchronous_bootout_and_retries_a_bootstrap_that_came_too_soon(cfg, tmp_path):
    p = plan(cfg)
    fake = FakeLaunchctl(loaded={"com.02luka.cls.autoheal"})
    labels = launchd.install(p, tmp_path / "LaunchAgents", runner=fake, uid=501, sleep=lambda s: None)
    assert set(labels) == fake.loaded
    verbs = [(c[1], c[-1].rsplit("/", 1)[-1]) for c in fake.calls if c[1] != "print" or "autoheal" in c[-1]]
    i = verbs.index(("bootout", "com.02luka.cls.autoheal"))
    assert verbs[i + 1:i + 4] == [("print", "com.02luka.cls.autoheal")] * 3, "polled until it was gone"
    assert all(c[2] == "gui/501" for c in fake.calls if c[1] == "bootstrap")
    assert sorted(path.name for path in (tmp_path / "LaunchAgents").iterdir()) == sorted(launchd.render(p))


def test_uninstall_boots_out_the_daily_cycle_first_and_removes_the_plists(cfg, tmp_path) -> None:
    p = plan(cfg)
    fake = FakeLaunchctl(loaded=set(), flaky=0)
    launchd.install(p, tmp_path / "la", runner=fake, uid=501, sleep=lambda s: None)
    fake.calls.clear()
    gone = launchd.uninstall(p, tmp_path / "la", runner=fake, uid=501, sleep=lambda s: None)
    assert gone[0] == "com.02luka.cls.daily" and set(gone) == {s.label for s in p.services}
    assert list((tmp_path / "la").iterdir()) == [] and fake.loaded == set()


def test_a_bootout_that_never_finishes_is_an_error_naming_the_job(cfg) -> None:
    fake = FakeLaunchctl(loaded={"x"}, linger=10**6)
    t = [0.0]
    with pytest.raises(launchd.LaunchctlError, match="still loaded after 10 s"):
        launchd.bootout("x", runner=fake, uid=1, sleep=lambda s: t.__setitem__(0, t[0] + s), clock=lambda: t[0])


def test_launchd_install_elsewhere_than_macos_is_a_clear_refusal(cfg, monkeypatch, capsys) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    for action in ("install", "uninstall"):
        assert main(["launchd", action, "--config", str(cfg.source)]) == 2
        err = capsys.readouterr().err
        assert "macOS only (this is Linux)" in err and "govheal systemd" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------- systemd


def check_unit(name: str, text: str) -> None:
    """The keys systemd would read, as systemd reads them."""
    section = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{name}:{n}: not KEY=VALUE"
        assert not re.search(r"\s#", value), f"{name}:{n}: an end-of-line comment becomes part of the value"
        if key.startswith("StartLimit"):
            assert section == "[Unit]", f"{name}:{n}: {key} is ignored outside [Unit]"
        if key == "ExecStart":
            assert value.startswith("/"), f"{name}:{n}: absolute program path"


def test_units_and_the_timer_have_the_keys_they_need(cfg) -> None:
    units = systemd.render(plan(cfg))
    assert set(units) == {"govheal-exporter.service", "govheal-receiver.service", "govheal-prometheus.service",
                          "govheal-alertmanager.service", "govheal-daily.service", "govheal-daily.timer"}
    for name, text in units.items():
        check_unit(name, text)
        assert SECRET not in text
    receiver = units["govheal-receiver.service"]
    for line in ("StartLimitIntervalSec=300", "StartLimitBurst=5", "Restart=always", "RestartSec=5",
                 "WantedBy=default.target", "Environment=PYTHONUNBUFFERED=1"):
        assert line in receiver.splitlines()
    timer = units["govheal-daily.timer"].splitlines()
    assert "OnCalendar=*-*-* 09:00:00" in timer and "OnCalendar=*-*-* 21:00:00" in timer
    assert "Persistent=true" in timer and "Unit=govheal-daily.service" in timer
    daily = units["govheal-daily.service"].splitlines()
    assert "Type=oneshot" in daily and not any(x.startswith("Restart=") for x in daily)


def test_the_key_check_catches_what_systemd_would_silently_misread() -> None:
    with pytest.raises(AssertionError, match="end-of-line comment"):
        check_unit("x.service", "[Service]\nRestartSec=5 # seconds\n")
    with pytest.raises(AssertionError, match="ignored outside"):
        check_unit("x.service", "[Service]\nStartLimitBurst=5\n")


@pytest.mark.parametrize(("arg", "quoted"), [("/usr/bin/python", "/usr/bin/python"),
                                             ("/Users/me/My Agents/govheal.yaml", '"/Users/me/My Agents/govheal.yaml"'),
                                             ("50%", "50%%"), ("$HOME", "$$HOME"), ('a"b', '"a\\"b"')])
def test_argv_is_quoted_for_systemds_parser(arg, quoted) -> None:
    assert systemd.quote(arg) == quoted


def analyze(directory: Path, tmp_path: Path) -> tuple[str, subprocess.CompletedProcess]:
    """`systemd-analyze --user verify` when a user manager can be simulated (XDG_RUNTIME_DIR), else the system
    verifier: as root in a container without a user session, --user fails with 'Failed to initialize manager'."""
    units = sorted(str(p) for p in directory.iterdir())
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    user = subprocess.run(["systemd-analyze", "--user", "verify", *units], capture_output=True, text=True, env=env,
                          timeout=60)
    if "Failed to initialize manager" not in user.stderr and "RuntimeDirectory" not in user.stderr:
        return "--user", user
    return "system (--user cannot start a user manager here: " + user.stderr.strip()[:80] + ")", subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian: apt-get install systemd); the key checks above "
                           "run everywhere")
def test_systemd_analyze_verify_accepts_the_units_and_rejects_a_broken_one(cfg, tmp_path) -> None:
    directory = tmp_path / "units"
    systemd.write(plan(cfg), directory)
    mode, done = analyze(directory, tmp_path)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (mode, done.stdout, done.stderr)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "govheal-bad.service").write_text("[Service]\nExecStart=/usr/bin/true\nRestartSec=5 # seconds\n")
    mode, done = analyze(bad, tmp_path)
    assert "Failed to parse" in done.stderr, (mode, done.stderr)


class FakeSystemctl:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0)


def test_systemd_install_enables_the_services_and_the_timer_not_the_oneshot(cfg, tmp_path) -> None:
    fake = FakeSystemctl()
    units = systemd.install(plan(cfg), tmp_path / "user", runner=fake)
    assert fake.calls[0] == ["systemctl", "--user", "daemon-reload"]
    assert fake.calls[1][:4] == ["systemctl", "--user", "enable", "--now"]
    assert "govheal-daily.timer" in units and "govheal-daily.service" not in units
    systemd.uninstall(plan(cfg), tmp_path / "user", runner=fake)
    assert fake.calls[2][:4] == ["systemctl", "--user", "disable", "--now"]
    assert list((tmp_path / "user").iterdir()) == []


def test_systemd_install_without_a_user_manager_says_how_to_get_one(cfg, tmp_path) -> None:
    def no_bus(argv):
        return subprocess.CompletedProcess(argv, 1, "", "Failed to connect to bus: No medium found")
    with pytest.raises(systemd.SystemctlError, match="enable-linger"):
        systemd.install(plan(cfg), tmp_path / "user", runner=no_bus)


def test_systemd_install_elsewhere_than_linux_is_a_clear_refusal() -> None:
    with pytest.raises(GovhealError, match="Linux node with systemd only"):
        systemd.require_systemd("Darwin")


# ---------------------------------------------------------------------------------------------- the plan


def test_a_deployment_needs_the_token_in_a_file_and_fixed_ports(tmp_path) -> None:
    base = "agents:\n  - name: GG\n    health: {url: 'http://127.0.0.1:9/h'}\n"
    with pytest.raises(UsageError, match=r"receiver\.token_file is not set"):
        services.plan(parse_config(base, source=tmp_path / "g.yaml"), token=False)
    text = "receiver: {token_file: t}\nlisten: {exporter: '127.0.0.1:0'}\n" + base
    with pytest.raises(UsageError, match="needs a fixed port"):
        services.plan(parse_config(text, source=tmp_path / "g.yaml"), token=False)


@pytest.mark.parametrize("system", ["Darwin", "Linux"])
def test_the_committed_examples_are_what_the_code_writes(system) -> None:
    p = examples.example(system)
    where = "launchd" if system == "Darwin" else "examples/systemd"  # launchd/ is a top-level folder of its own
    rendered = {f"{where}/{k}": v.decode() for k, v in launchd.render(p).items()} if system == "Darwin" else \
        {f"{where}/{k}": v for k, v in systemd.render(p).items()}
    folder = REPO / where
    if os.environ.get("GOVHEAL_REGEN_GOLDEN") == "1":
        folder.mkdir(exist_ok=True)
        for f in folder.glob("*.plist" if system == "Darwin" else "govheal-*"):
            f.unlink()
        for name, text in rendered.items():
            (REPO / name).write_text(text)
    committed = {f"{where}/{f.name}": f.read_text() for f in folder.iterdir()
                 if f.suffix in (".plist", ".service", ".timer")}
    assert committed == rendered, "regenerate with GOVHEAL_REGEN_GOLDEN=1 and review the diff"
    for name, text in rendered.items():
        (check_plist(Path(name).name, text.encode()) if system == "Darwin" else check_unit(name, text))


DESIGN_FOLDERS = {"exporter", "webhook_receiver", "remediator", "grafana", "prometheus", "alertmanager", "launchd",
                  "tests", "govheal", "docs", "bench", "examples"}


def test_the_repository_has_only_the_design_cards_top_level_folders() -> None:
    """Rendered examples live under examples/ (the systemd units in examples/systemd/); launchd/ is the one
    deployment folder of its own. Build and tool output (hidden, *.egg-info, build/, dist/) is not counted."""
    folders = {p.name for p in REPO.iterdir() if p.is_dir() and not p.name.startswith(".")
               and not p.name.endswith(".egg-info") and p.name not in ("build", "dist", "__pycache__")}
    assert folders <= DESIGN_FOLDERS, f"not a design-card folder: {sorted(folders - DESIGN_FOLDERS)}"
    assert (REPO / "examples" / "systemd" / "govheal-daily.timer").is_file()
