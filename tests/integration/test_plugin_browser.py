"""The bottleneck page in a real headless browser (Debian's chromium) against the integration
stack's api-server: it renders, has its SVG charts and critical-path marks, signs nobody in
without a session, and shows inside the Airflow UI. Screenshots go to `docs/img/`.

The browser is driven over the DevTools protocol with a small websocket client: that is what
sets the `_token` cookie the Airflow UI's login would set, so the page authenticates exactly as
it does inside the UI's iframe (no token in a URL, no test-only route).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from include.k1n.local.demo import RunRecord
from include.k1n.settings import PROJECT_DIR

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = PROJECT_DIR / "docs" / "img" / "bottleneck-report.png"
UI_SCREENSHOT = PROJECT_DIR / "docs" / "img" / "bottleneck-in-airflow-ui.png"
WIDTH, HEIGHT = 1400, 1800
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    f"--window-size={WIDTH},{HEIGHT}",
    "--remote-debugging-port=0",
)


class DevTools:
    """A headless chromium and the few DevTools protocol calls these tests need."""

    def __init__(self, executable: Path, profile: Path) -> None:
        from websockets.sync.client import connect

        self.log = profile.with_suffix(".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(executable), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        active_port = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not active_port.exists() or len(active_port.read_text().splitlines()) < 2:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        port, path = active_port.read_text().splitlines()[:2]
        self.socket = connect(f"ws://127.0.0.1:{port}{path}", max_size=None)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self.ids), "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=60))
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for_event(self, name: str, session: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == name and event.get("sessionId") == session:
                    return self.events.pop(index)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {name} within {timeout} s")
            self.events.append(json.loads(self.socket.recv(timeout=remaining)))

    def new_tab(self, cookie: dict[str, Any] | None = None) -> str:
        """A tab in a fresh browser context (its own cookies); returns the session id."""
        context = self.call("Target.createBrowserContext")["browserContextId"]
        target = self.call("Target.createTarget", url="about:blank", browserContextId=context)
        session = self.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)[
            "sessionId"
        ]
        for domain in ("Page.enable", "Network.enable", "Runtime.enable"):
            self.call(domain, session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        if cookie:
            self.call("Network.setCookie", session, **cookie)
        return session

    def open(self, session: str, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", session, url=url)
        self.wait_for_event("Page.loadEventFired", session)

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, session: str, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(session, expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} still falsy after {timeout} s")
            time.sleep(0.5)

    def screenshot(self, session: str, path: Path, *, full_page: bool) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics", session)["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": WIDTH, "height": size["height"], "scale": 1},
            )
        data = self.call("Page.captureScreenshot", session, **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close")
        with contextlib.suppress(Exception):
            self.socket.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None:
            pytest.skip("no /usr/bin/chromium and no apt-get to install it")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"], check=True, env=env, capture_output=True
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    devtools = DevTools(ensure_chromium(), tmp_path_factory.mktemp("chromium") / "profile")
    yield devtools
    devtools.close()


@pytest.fixture(scope="module")
def session_cookie(airflow_stack, airflow_client) -> dict[str, Any]:
    """The `_token` cookie the Airflow UI's login leaves in the browser."""
    token = airflow_client.http.headers["Authorization"].removeprefix("Bearer ")
    return {"name": "_token", "value": token, "url": airflow_stack.base_url, "sameSite": "Lax"}


def page_url(base_url: str, report: RunRecord, a: RunRecord, b: RunRecord) -> str:
    keys = {"run": report, "a": a, "b": b}
    return f"{base_url}/k1n/?" + urlencode({k: f"{r.dag_id}/{r.run_id}" for k, r in keys.items()})


DOM_SUMMARY = """JSON.stringify({
  title: document.title,
  charts: [...document.querySelectorAll("svg[data-chart]")].map(s => s.dataset.chart),
  chartWidths: [...document.querySelectorAll("svg[data-chart]")].map(
    s => Math.round(s.getBoundingClientRect().width)),
  criticalBars: document.querySelectorAll("#chart-gantt rect.bar.critical").length,
  otherBars: document.querySelectorAll("#chart-gantt rect.bar:not(.critical)").length,
  criticalLinks: document.querySelectorAll("#chart-gantt path.cp-link").length,
  durationBars: document.querySelectorAll("#chart-durations rect.bar").length,
  chips: [...document.querySelectorAll("#critical-path .chip")].map(c => c.dataset.node),
  panels: [...document.querySelectorAll("#chart-compare g.run-panel")].map(g => g.dataset.dag),
  compareCritical: document.querySelectorAll("#chart-compare rect.bar.critical").length,
  speedup: (document.querySelector("#speedup") || {}).textContent || null,
  errors: [...document.querySelectorAll(".message.error")].map(e => e.textContent),
})"""


def test_the_page_renders_its_charts_in_a_browser(
    browser, session_cookie, airflow_stack, optimized_run, baseline_run
):
    tab = browser.new_tab(cookie=session_cookie)
    browser.open(tab, page_url(airflow_stack.base_url, optimized_run, baseline_run, optimized_run))
    dom = json.loads(browser.evaluate(tab, DOM_SUMMARY))

    assert dom["title"] == "K1N bottleneck analysis"
    assert dom["errors"] == []
    assert dom["charts"] == ["durations", "gantt", "compare"]
    assert all(width > 900 for width in dom["chartWidths"]), dom["chartWidths"]
    # The critical path: chips in order, red bars and dashed links on the Gantt chart.
    assert dom["chips"][-1] == "check_quality_gates"
    assert dom["chips"][-2] == "task_22_final_report"
    assert {"task_06_design_adr", "task_07_pattern_library", "task_08_code_generation"} <= set(
        dom["chips"]
    )
    assert dom["criticalBars"] >= len(dom["chips"]) and dom["otherBars"] > 0
    assert dom["criticalLinks"] == len(dom["chips"])  # one per hop, plus the tail
    assert dom["durationBars"] == len({s.task_id for s in optimized_run.spans})
    # Two Gantt charts on one axis: baseline above optimized, with the speedup.
    assert dom["panels"] == ["k1n_22task_baseline", "k1n_22task_optimized"]
    assert dom["compareCritical"] > 0
    assert "faster" in dom["speedup"]
    browser.screenshot(tab, SCREENSHOT, full_page=True)
    assert SCREENSHOT.stat().st_size > 50_000


def test_without_a_session_the_page_asks_to_sign_in(browser, airflow_stack):
    tab = browser.new_tab()  # fresh context: no cookie
    browser.open(tab, f"{airflow_stack.base_url}/k1n/")
    summary = browser.evaluate(
        tab,
        "JSON.stringify({login: !!document.querySelector('#login-required'),"
        " href: (document.querySelector('#login-required a') || {}).href || null,"
        " charts: document.querySelectorAll('svg[data-chart]').length})",
    )
    result = json.loads(summary)
    assert result["login"] and result["charts"] == 0
    assert result["href"].startswith(f"{airflow_stack.base_url}/auth/login?next=")


def test_the_page_shows_inside_the_airflow_ui(browser, session_cookie, airflow_stack):
    """Browse -> K1N bottlenecks: the UI embeds the page in an iframe that sends the cookie."""
    tab = browser.new_tab(cookie=session_cookie)
    browser.open(tab, f"{airflow_stack.base_url}/plugin/k1n-bottlenecks")
    charts = browser.wait_until(
        tab,
        "(() => { const frame = document.querySelector('iframe');"
        " const doc = frame && frame.contentDocument;"
        " return doc && doc.querySelectorAll('svg[data-chart]').length; })()",
        timeout=90,
    )
    assert charts >= 2
    time.sleep(1)  # let the UI finish its own layout before the picture
    browser.screenshot(tab, UI_SCREENSHOT, full_page=False)
