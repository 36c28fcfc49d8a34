"""The bottleneck page in a real headless browser (Playwright driving Debian's chromium) against
the integration stack's api-server, on runs the scheduler really ran: its charts and
critical-path marks, "faster"/"slower" as a user reads them, a running run shown partial
with its ETA progress bar, the DAG's criticality view,
the sign-in hint, the Browse entry and the run page's tab inside the Airflow UI.
Screenshots go to `docs/img/`.

The browser carries the `_token` cookie the Airflow UI's login sets, so the page authenticates
exactly as it does inside the UI's iframe (no token in a URL, no test-only route).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from airflow_bottleneck.render.charts.axis import SLOWER
from k1n.settings import PROJECT_DIR
from k1n_local.demo import RunRecord
from tests.integration.conftest import FAN_OUT_DAG_ID, run

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
IMAGES = PROJECT_DIR / "docs" / "img"
PACKAGE_SCREENSHOT = PROJECT_DIR / "packages" / "airflow-bottleneck" / "docs" / "screenshot.png"
VIEWPORT = {"width": 1400, "height": 1800}


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing (never a skipped test)."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None:
            pytest.fail("no /usr/bin/chromium and no apt-get to install it (make system-deps)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"], check=True, env=env, capture_output=True
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(ensure_chromium()), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, airflow_stack, airflow_client):
    """A tab signed in to Airflow: the `_token` cookie the UI's login leaves."""
    context = browser.new_context(viewport=VIEWPORT)
    token = airflow_client.http.headers["Authorization"].removeprefix("Bearer ")
    context.add_cookies([{"name": "_token", "value": token, "url": airflow_stack.base_url}])
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    yield tab
    context.close()


def page_url(base_url: str, **runs: RunRecord) -> str:
    query = {name: f"{run.dag_id}/{run.run_id}" for name, run in runs.items()}
    return f"{base_url}/bottlenecks/?" + urlencode(query)


def rgb(hex_color: str) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def test_the_page_renders_its_charts(page, airflow_stack, optimized_run, baseline_run):
    page.goto(page_url(airflow_stack.base_url, run=optimized_run, a=baseline_run, b=optimized_run))
    assert page.title() == "Bottleneck analysis"
    assert page.locator(".message.error").count() == 0
    charts = page.locator("svg[data-chart]")
    assert [charts.nth(i).get_attribute("data-chart") for i in range(charts.count())] == [
        "durations",
        "gantt",
        "comparison",
    ]
    assert all(charts.nth(i).bounding_box()["width"] > 900 for i in range(charts.count()))
    chips = page.locator("#critical-path .chip")
    tasks = [chips.nth(i).get_attribute("data-task") for i in range(chips.count())]
    assert tasks[-1] == "check_quality_gates" or tasks[-1] == "clean_up_storage"
    assert "task_22_final_report" in tasks
    # Bold red bars for the path; dashed hand-off links between its steps.
    critical = page.locator('svg[data-chart="durations"] g.bar[data-critical="true"]')
    assert critical.count() == len(set(tasks))
    assert page.locator("svg[data-chart=gantt] line.handoff").count() == len(tasks) - 1
    headline = page.locator("#speedup").inner_text()
    assert "faster" in headline and "slower" not in headline
    assert page.locator("#wall-split span").count() == 4
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=IMAGES / "bottleneck-report.png", full_page=True)


def test_a_slower_run_reads_slower_in_the_warning_colour(
    page, airflow_stack, optimized_run, baseline_run
):
    # A = the optimized run, B = the baseline: B is the slower one.
    page.goto(page_url(airflow_stack.base_url, run=baseline_run, a=optimized_run, b=baseline_run))
    verdict = page.locator("#speedup [data-verdict]")
    text = verdict.inner_text()
    assert verdict.get_attribute("data-verdict") == "slower"
    factor = float(re.match(r"([\d.]+)\u00d7 slower", text).group(1))
    assert factor >= 1
    assert verdict.evaluate("e => getComputedStyle(e).color") == rgb(SLOWER)
    delta = page.locator("svg[data-chart=comparison] g.delta text").text_content()
    assert delta == f"{factor:.2f}\u00d7 slower"
    title = page.locator("#compare h2").inner_text()
    assert optimized_run.run_id in title and baseline_run.run_id in title
    page.locator("#compare").screenshot(path=IMAGES / "bottleneck-comparison.png")


def test_a_running_run_is_shown_partial_until_it_ends(
    page, airflow_stack, airflow_client, fan_out_runs
):
    # Three successful runs of history before it: enough for an ETA.
    run(airflow_client, FAN_OUT_DAG_ID, stretch=1.0)
    run_id = airflow_client.trigger(FAN_OUT_DAG_ID, conf={"stretch": 8})
    deadline = time.monotonic() + 120
    while True:  # wait for a finished task instance: something to analyze
        states = {
            ti["task_id"]: ti["state"]
            for ti in airflow_client.task_instances(FAN_OUT_DAG_ID, run_id)
        }
        if states.get("extract_rows") == "success":
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.5)
    url = f"{airflow_stack.base_url}/bottlenecks/?" + urlencode(
        {"dag_id": FAN_OUT_DAG_ID, "run_id": run_id}
    )
    page.goto(url)
    assert page.locator("#partial-warning").is_visible(), page.content()[:3000]
    assert page.locator("#report").get_attribute("data-partial") == "true"
    assert page.locator('meta[http-equiv="refresh"]').count() == 1
    assert "observed" in page.locator("svg[data-chart=gantt]").text_content()
    # What is ahead: the ETA as a progress bar with its band, the remaining critical path.
    forecast = page.locator("#forecast")
    assert forecast.get_attribute("data-available") == "true", forecast.inner_text()
    bar = page.locator("#progress")
    assert bar.get_attribute("role") == "progressbar"
    assert 0 < float(bar.get_attribute("aria-valuenow")) <= 100
    assert bar.bounding_box()["width"] > 500
    assert page.locator("#progress .band").bounding_box()["width"] > 0
    path = page.locator("#remaining-path .chip")
    assert path.nth(path.count() - 1).get_attribute("data-task") == "publish_summary"
    assert "Expected end in" in forecast.inner_text()
    # Criticality across the DAG's runs: the view of the DAG the tab is filtered to.
    view = page.locator("#criticality")
    assert view.locator("svg.box").count() == view.locator("tr[data-task]").count() >= 5
    first = view.locator("tr[data-task]").first.get_attribute("data-task")
    assert first == "transform_batch"  # the long branch decides the wall in every run
    forecast.screenshot(path=IMAGES / "bottleneck-forecast.png")
    view.screenshot(path=IMAGES / "bottleneck-criticality.png")
    airflow_client.wait_for_run(FAN_OUT_DAG_ID, run_id, timeout=180)
    page.goto(url)
    assert page.locator("#partial-warning").count() == 0
    assert page.locator('meta[http-equiv="refresh"]').count() == 0


def test_without_a_session_the_page_asks_to_sign_in(browser, airflow_stack):
    context = browser.new_context()  # no cookie
    anonymous = context.new_page()
    anonymous.goto(f"{airflow_stack.base_url}/bottlenecks/")
    link = anonymous.locator("#login-required a")
    assert link.get_attribute("href").startswith("/auth/login?next=")
    assert anonymous.locator("svg[data-chart]").count() == 0
    context.close()


def test_the_page_shows_inside_the_airflow_ui(page, airflow_stack, optimized_run):
    """Browse -> Bottlenecks: the UI embeds the page in an iframe that sends the cookie."""
    page.goto(f"{airflow_stack.base_url}/plugin/bottlenecks")
    frame = page.frame_locator("iframe")
    frame.locator("svg[data-chart]").first.wait_for()
    assert frame.locator("svg[data-chart]").count() >= 2
    page.wait_for_timeout(1000)  # let the UI finish its own layout before the picture
    page.screenshot(path=IMAGES / "bottleneck-in-airflow-ui.png")
    # The same picture in the airflow-bottleneck package's README.
    shutil.copyfile(IMAGES / "bottleneck-in-airflow-ui.png", PACKAGE_SCREENSHOT)


def test_every_run_page_has_its_report_tab(page, airflow_stack, fan_out_runs):
    _, slow = fan_out_runs
    page.goto(f"{airflow_stack.base_url}/dags/{slow.dag_id}/runs/{slow.run_id}")
    page.get_by_text("Bottleneck report", exact=True).first.click()
    frame = page.frame_locator("iframe")
    report = frame.locator("#report")
    report.wait_for()
    assert report.get_attribute("data-dag") == slow.dag_id
    assert report.get_attribute("data-run") == slow.run_id
    chips = frame.locator("#critical-path .chip")
    assert chips.first.get_attribute("data-task") == "extract_rows"
    page.wait_for_timeout(1000)
    page.screenshot(path=IMAGES / "bottleneck-run-tab.png")
