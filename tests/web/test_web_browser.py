"""Issue 19 point 4: the app driven in headless Chromium (Debian's chromium through Playwright):
opening Data, building a cohort, designing a study, running it on a 10k synthetic world and reading
its Kaplan-Meier curve and forest plot, a meta-analysis upload, the decision-support form, keyboard
navigation and the layout at 1024 px. With FOLLICLE_WEB_SCREENSHOTS=DIR the main pages are saved
there as PNG (that is how docs/img/ is made)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.chromium

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(world_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread."""
    import uvicorn

    from follicle.web.app import create_app
    from follicle.web.settings import WebSettings

    port = _free_port()
    app = create_app(WebSettings(db=str(world_db), runs=tmp_path_factory.mktemp("web-runs"), port=port))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "the web server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    app.state.runs.shutdown()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)  # a fresh temporary profile
        yield b
        b.close()


@pytest.fixture()
def page(browser, server: str):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server, accept_downloads=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    ctx.close()
    assert not errors, f"browser errors (CSP violations, script errors): {errors}"


def poll(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until *check()* is true (Python-side polling: the page's CSP forbids the eval that
    Playwright's wait_for_function needs, as it should)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the page")


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("FOLLICLE_WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def test_open_data(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    shot(page, "home")
    page.get_by_role("link", name="Data", exact=True).first.click()
    page.wait_for_url("**/data")
    page.wait_for_selector("#checks-table")  # loaded by HTMX after the page
    assert re.fullmatch(r"[\d,]+", page.inner_text("#persons").strip())
    assert "PASS" in page.inner_text("#checks")
    shot(page, "data")


def test_cohort_study_run_km_forest(page) -> None:  # type: ignore[no-untyped-def]
    # building a cohort: a study from the bundled template, then its JAKi cohort with live attrition
    page.goto("/studies")
    page.fill("#new-name", "browser_study")
    page.select_option("#new-template", "jaki_neuropsych")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/studies/browser_study")
    page.get_by_role("link", name="jaki", exact=True).click()
    page.wait_for_selector("#attrition-table")
    last = lambda: page.locator("#attrition-table tbody tr").last.locator("td").nth(1).inner_text()  # noqa: E731
    before = last()
    rows_before = page.locator("#attrition-table tbody tr").count()
    page.select_option("#exclude_2_set", "anxiety")  # the empty row: add an exclusion
    poll(lambda: page.locator("#attrition-table tbody tr").count() > rows_before)
    after = last()
    assert int(after.replace(",", "")) <= int(before.replace(",", ""))
    shot(page, "cohort")
    page.get_by_role("button", name="Save cohort").click()
    page.wait_for_url("**/cohorts/jaki?saved=1")
    # designing the study: an outcome, one comparison, validate, download the YAML
    page.goto("/studies/browser_study")
    page.fill("#new-outcome-name", "sleep_any")
    page.select_option("#new-outcome-set", "sleep_disorders")
    page.click("#add-outcome")
    page.wait_for_url("**/studies/browser_study#outcomes")
    page.click("button[aria-label='Delete comparison jaki_vs_corticosteroid']")
    page.wait_for_load_state()
    # the adjustments: the template's matching, plus a crude one added in the table of adjustments
    page.fill("#new-adjustment-name", "unadjusted")
    page.select_option("#new-adjustment-kind", "crude")
    page.click("#save-settings")
    page.wait_for_url("**/studies/browser_study#settings")
    assert page.input_value("#adj_1_name") == "unadjusted" and page.input_value("#adj_1_kind") == "crude"
    assert page.input_value("#adj_0_caliper") == "0.1"  # the matching one keeps its options
    page.click("#validate")
    page.wait_for_selector("#problems .alert.ok")
    with page.expect_download() as dl:
        page.click("#download-spec")
    text = Path(dl.value.path()).read_text()
    assert "sleep_any" in text and "jaki_vs_corticosteroid" not in text
    assert "name: unadjusted" in text and "kind: crude" in text
    shot(page, "designer")
    # running it in the background, with live progress
    page.click("#run-study")
    page.wait_for_url(re.compile(r".*/runs/\d{8}-\d{6}-browser_study$"))
    page.wait_for_selector("#run-status")
    page.wait_for_selector("text=Summary", timeout=300_000)  # the page reloads itself when the run is done
    # the forest plot: hover a square for its numbers, zoom in
    page.wait_for_selector("#run-forest svg")
    shot(page, "results")
    square = page.locator("#run-forest svg .pt").first
    square.hover()
    tip = page.locator("#run-forest .plot-tip")
    tip.wait_for(state="visible")
    assert "[" in tip.inner_text()
    x1 = page.get_attribute("#run-forest svg", "data-x1")
    page.click("#run-forest button[data-zoom='in']")
    poll(lambda: page.get_attribute("#run-forest svg", "data-x1") != x1)
    # both adjustments are estimated: the summary lists them, and either can be chosen
    assert "unadjusted" in page.inner_text("#adjustments") and "matching" in page.inner_text("#adjustments")
    # the Kaplan-Meier curve: hover for cumulative incidence and numbers at risk, zoom by the buttons
    page.get_by_role("link", name="Kaplan-Meier").click()
    page.wait_for_selector("#run-km svg[data-km]")
    box = page.locator("#run-km svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.35)
    km_tip = page.locator("#run-km .plot-tip")
    km_tip.wait_for(state="visible")
    assert "at risk" in km_tip.inner_text() and "%" in km_tip.inner_text()
    assert "Number at risk" in page.inner_text("#run-km")
    shot(page, "km")
    x1 = page.get_attribute("#run-km svg", "data-x1")
    page.click("#run-km button[data-zoom='in']")
    poll(lambda: page.get_attribute("#run-km svg", "data-x1") != x1)
    page.click("#run-km button[data-zoom='reset']")
    poll(lambda: page.get_attribute("#run-km svg", "data-x1") == x1)
    # the crude adjustment's own curve
    page.select_option("#adjustment", "unadjusted")
    page.locator("#adjustment").locator("xpath=../..").get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r".*adjustment=unadjusted.*"))
    page.wait_for_selector("#run-km svg[data-km]")
    assert "(unadjusted)" in page.inner_text("#tab-title")
    # printing: the result page without the navigation and the zoom buttons
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible() and not page.locator("#run-km .plot-tools").is_visible()
    assert page.locator("#run-km svg").is_visible()
    page.emulate_media(media="screen")


def test_meta_upload(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "trials.csv"
    csv.write_text("study,events_t,total_t,events_c,total_c\nA,10,100,5,100\nB,20,200,8,190\nC,15,90,9,95\n")
    page.goto("/meta")
    page.check("#source-upload")
    page.set_input_files("#csv", str(csv))
    page.select_option("#measure", "OR")
    page.get_by_role("button", name="Pool").click()
    page.wait_for_selector("#meta-pooled")
    assert page.inner_text("#meta-pooled").startswith("OR 2.19")
    page.locator("#meta-forest svg .pt").first.hover()
    page.locator("#meta-forest .plot-tip").wait_for(state="visible")
    page.check("input[name=source][value=bundled]")
    page.get_by_role("button", name="Pool").click()
    page.wait_for_selector("#meta-grade")
    shot(page, "meta")


def test_cds_form(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/cds")
    page.select_option("#drug", "baricitinib")
    page.select_option("#region", "EU")
    page.fill("#f-age_years", "70")
    page.check("input[name=age_years_assumed]")
    page.select_option("#f-tb_status", "negative")
    page.get_by_role("button", name="Check").click()
    page.wait_for_selector("#decision")
    assert "cannot-decide" in page.inner_text("#decision")
    assert "Assumed (not from the record)" in page.inner_text("#cards")
    shot(page, "cds")


def test_keyboard_and_layout_at_1024(page) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    for path in ("/", "/data", "/concepts", "/studies", "/runs", "/meta", "/nma", "/cds"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1024, path
        unlabeled = page.evaluate("""[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)""")
        assert not unlabeled, f"{path}: fields without a label: {unlabeled}"
