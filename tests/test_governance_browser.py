"""A real Chromium (Debian's chromium + chromium-driver, driven by selenium) uses /ops/governance as an
operator would: logs in, pauses GG by clicking, sees the state change, mutes Mary; a screenshot is saved
under the test's tmp dir and copied to .govheal/artifacts/governance.png (gitignored).

The receiver is the real app served by waitress on a free loopback port. Prometheus is a canned stand-in
(fixed samples, a 24 h strip with a short outage and a maintenance window) so the screenshot shows every
column; the Prometheus cache itself is tested against a real Prometheus elsewhere.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from govheal.client import Sample, Series
from remediator.store import Store
from tests.test_receiver_support import TOKEN, FakeBridge, FakeRemediator, receiver_config
from webhook_receiver.app import create_app
from webhook_receiver.governance.auth import Tokens
from webhook_receiver.governance.promcache import Q_HEALTHY, Q_STRIP, Q_UP, Q_UPTIME, STEP

pytestmark = pytest.mark.live
ADMIN = "admin-token-0123456789abcdef"
REPO = Path(__file__).resolve().parent.parent
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1600,1000"]


def browser_or_skip() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    if shutil.which("apt-get"):
        pytest.fail("chromium / chromedriver not on PATH: `make test` installs them (make browser: apt-get install "
                    "chromium chromium-driver)")
    pytest.skip("no Chromium with its WebDriver here (make browser installs Debian's chromium + chromium-driver; "
                "this system has no apt-get); the page is still tested through Flask's client "
                "(tests/test_governance_web.py)")


class CannedPrometheus:
    """Fixed answers for the page's queries (see the module docstring)."""

    def __init__(self, agents: list[str]) -> None:
        self.agents = agents

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        now = time.time()
        values = {Q_UP: 1.0, Q_HEALTHY: 1.0, Q_UPTIME: 3 * 3600 + 125}.get(expr)
        if expr == "agent:govheal_agent_availability_unless_maintenance:avg1d":
            values = 0.9931
        if expr.startswith("changes("):
            values = 2.0
        if values is None:
            return []
        return [Sample({"agent": a, "node": "n1"}, now, values) for a in self.agents]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        n = int((end - start) // STEP) + 1
        out = []
        for i, a in enumerate(self.agents):
            if expr == Q_STRIP:
                pts = tuple((start + k * STEP, 0.0 if (i == 1 and 60 <= k <= 61) else 0.6 if k == 30 else 1.0)
                            for k in range(n))
            else:  # maintenance
                pts = tuple((start + k * STEP, 1.0 if (i == 0 and 80 <= k <= 83) else 0.0) for k in range(n))
            out.append(Series({"agent": a, "node": "n1"}, pts))
        return out


@pytest.fixture
def served(tmp_path):
    from waitress.server import create_server

    config = receiver_config(tmp_path, extra="admin: {refresh: 300s}")
    fake = FakeRemediator(["GG", "Mary"])
    fake.store = Store(tmp_path / "state" / "govheal.sqlite3")
    now = time.time()
    fake.store.open_incident("GG", "a:1", now - 3600, 812, "AgentDown firing", "alertmanager")
    fake.store.finish_incident("GG", "a:1", "healed", now - 3590)
    app = create_app(config, remediator=fake, bridge=FakeBridge(), token=TOKEN, registry=CollectorRegistry(),
                     start=False, governance={"tokens": Tokens(ADMIN, None),
                                              "prometheus": CannedPrometheus(["GG", "Mary", "Remote"])})
    app.extensions["govheal"].governance.cache.refresh()
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)
    fake.store.close()


def test_chromium_logs_in_pauses_and_mutes_by_clicking(served, tmp_path):
    chromium, driver_path = browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    app, base = served
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"]:
        opts.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path, log_output=str(tmp_path / "chromedriver.log")),
                               options=opts)
    try:
        wait = WebDriverWait(browser, 15)
        browser.get(base + "/ops/governance")
        wait.until(ec.presence_of_element_located((By.ID, "login")))  # sent to the login form
        browser.find_element(By.ID, "name").send_keys("alice")
        browser.find_element(By.ID, "token").send_keys(ADMIN)
        browser.find_element(By.ID, "login").click()
        row = wait.until(ec.presence_of_element_located((By.ID, "agent-GG")))
        assert row.find_element(By.CSS_SELECTOR, "[data-switches]").text == "none"

        row.find_element(By.NAME, "reason").send_keys("deploying 2.4")
        row.find_element(By.CSS_SELECTOR, "button[value=pause]").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "GG: pause by alice"))
        switches = browser.find_element(By.CSS_SELECTOR, "#agent-GG [data-switches]").text
        assert "pause (now) by alice: deploying 2.4" in switches

        mary = browser.find_element(By.ID, "agent-Mary")
        mary.find_element(By.NAME, "for").clear()
        mary.find_element(By.NAME, "for").send_keys("30m")
        mary.find_element(By.NAME, "reason").send_keys("noisy disk alerts")
        mary.find_element(By.CSS_SELECTOR, "button[value=mute]").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "Mary: mute by alice"))
        assert "mute (now) by alice" in browser.find_element(By.CSS_SELECTOR, "#agent-Mary [data-switches]").text

        shot = tmp_path / "governance.png"
        assert browser.save_screenshot(str(shot))
        keep = REPO / ".govheal" / "artifacts"
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "governance.png")
    finally:
        browser.quit()
    gov = app.extensions["govheal.governance"].governance
    assert {(str(s.agent), str(s.kind), s.owner) for s in gov.switches()} == {("GG", "pause", "alice"),
                                                                                ("Mary", "mute", "alice")}
    assert gov.effective("GG").paused and gov.effective("Mary").muted
