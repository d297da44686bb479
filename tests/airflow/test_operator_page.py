"""The operator page in a real browser (Debian's headless Chromium driven by Selenium) against the tier's
API server: Airflow's login page, the rows, a filter, a row, an invalid edit, a triggered load, a report
download; then a read-only user who cannot act. One browser session for the whole flow. Then the same
Airflow served under a path (``[api] base_url = <proxy>/airflow``) behind a proxy that serves only that path:
the nav entry, the page in its iframe, its links and its REST calls stay under it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from include.local.airflow_stack import USER, VIEWER, free_port
from tests.airflow.conftest import ORDERS, control_row, create_orders, wait
from tests.airflow.proxy import prefix_proxy

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
KEY = "tier.ui_orders"
PREFIX = "/airflow"
REPORT = "table,status,missing_in_target,missing_in_source,different\nhr.emp,completed,2,1,3\n"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "install Debian's chromium and chromium-driver: make test"
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(10)
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page_tier(tier):
    """A row with its DAG parsed and unpaused, and a DB Sentinel report under the stack's artifacts root."""
    create_orders(tier, "ui_orders")
    tier.repository().add(control_row("ui_orders", "incremental", **ORDERS))
    run = tier.stack.home / "sentinel" / "db_sentinel_hr" / "manual__ui"
    run.mkdir(parents=True)
    (run / "comparison_report_20240501_100000.csv").write_text(REPORT)
    tier.refresh_snapshot(KEY)
    return tier


@pytest.fixture(scope="module", autouse=True)
def prefixed_airflow(tier):
    """A second API server on the tier's home and metadata database with ``[api] base_url`` = a proxy's URL
    and ``/airflow``, the proxy forwarding only what is under ``/airflow/`` (as Astro's ingress does). Started
    first in the module (autouse), so that it comes up while ``page_tier`` and the first test wait for their
    runs; ``.wait()`` for it."""
    port = free_port()
    with (
        prefix_proxy(f"http://127.0.0.1:{port}", PREFIX) as proxy,
        tier.stack.api_server(base_url=f"{proxy}{PREFIX}", port=port) as server,
    ):
        yield server


def log_in(driver, base: str, user: str, password: str) -> None:
    """Open the page, which sends to Airflow's login page (under ``base``), log in, land back on the page."""
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/dataplatform/")
    wait(
        lambda: driver.current_url.startswith(f"{base}/auth/login?next="),
        timeout=30,
        what="Airflow's login page",
        interval=0.5,
    )
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.XPATH, "//button[@type='submit']").click()  # the login page sets the cookie, then moves
    wait(lambda: driver.current_url.startswith(f"{base}/dataplatform/"), timeout=30, what="the operator page")


def click_and_load(driver, element) -> None:
    """Click a link or button and wait for the next page (reading the old one would race it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(lambda _: replaced(old))


def replaced(old) -> bool:
    """The page ``old`` belongs to is gone. Mid-navigation Chrome may answer that its node "does not belong
    to the document" (an unknown error) rather than that it is stale, which breaks selenium's staleness_of
    (SeleniumHQ/selenium#15401): both mean the document changed."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        old.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def status(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "status").text


def test_an_operator_logs_in_filters_edits_triggers_and_downloads_and_a_viewer_cannot_act(page_tier, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    tier, base = page_tier, page_tier.stack.url
    views = tier.call("GET", "/plugins")["plugins"]
    [page] = [p for p in views if p["name"] == "dataplatform_operator_page"]
    # relative: the UI's page has a <base href> of the path Airflow is served under (here none)
    assert [(v["name"], v["href"]) for v in page["external_views"]] == [("Data platform", "dataplatform/")]

    log_in(browser, base, USER, tier.stack.password)
    assert browser.find_element(By.ID, "user").text == USER
    assert browser.find_element(By.CSS_SELECTOR, f"tr[data-key='{KEY}']")

    Select(browser.find_element(By.NAME, "status")).select_by_visible_text("Failed")
    click_and_load(browser, browser.find_element(By.ID, "apply"))
    assert "status=Failed" in browser.current_url
    assert not browser.find_elements(By.CSS_SELECTOR, f"tr[data-key='{KEY}']")
    Select(browser.find_element(By.NAME, "status")).select_by_visible_text("Never loaded")
    Select(browser.find_element(By.NAME, "strategy")).select_by_visible_text("incremental")
    click_and_load(browser, browser.find_element(By.ID, "apply"))
    click_and_load(browser, browser.find_element(By.LINK_TEXT, KEY))
    assert browser.find_element(By.ID, "key").text == KEY and status(browser) == "Never loaded"

    chunk_size = browser.find_element(By.CSS_SELECTOR, "#edit input[name='chunk_size']")
    chunk_size.clear()
    chunk_size.send_keys("lots")
    click_and_load(browser, browser.find_element(By.ID, "save"))
    assert (
        "chunk_size: 'lots' is not a whole number; set chunk_size to e.g. 30"
        in browser.find_element(By.ID, "error").text
    )
    assert tier.repository().get(KEY)["chunk_size"] is None

    browser.get(f"{base}/dataplatform/rows/{quote(KEY)}")
    csrf = browser.find_element(By.CSS_SELECTOR, "meta[name='csrf']").get_attribute("content")
    click_and_load(browser, browser.find_element(By.ID, "trigger"))
    said = browser.find_elements(By.ID, "message")
    assert said, browser.find_element(By.TAG_NAME, "body").text
    assert said[0].text.startswith(f"triggered {KEY}: Airflow run ")
    run_id = said[0].text.removeprefix(f"triggered {KEY}: Airflow run ")
    assert tier.call("GET", tier.run_path(KEY, run_id))["triggering_user_name"] == USER  # as the user, not the page

    def changed():  # the run queues the row, then loads it
        browser.refresh()
        return status(browser) in ("Queued", "In Progress", "Succeeded")

    wait(changed, timeout=120, what=f"{KEY}'s status to change on its page", interval=1)
    assert browser.find_element(By.ID, "dag-run").get_attribute("href").startswith(f"{base}/dags/{KEY}/runs/")
    queued = [h for h in tier.repository().history(KEY) if h["new_values"].get("last_status") == "Queued"]
    assert [h["change_source"] for h in queued] == [f"airflow:{USER}"]  # the run's changes name its user

    browser.get(f"{base}/dataplatform/comparisons")
    browser.find_element(By.CSS_SELECTOR, "#reports a.report").click()
    report = browser.downloads / "comparison_report_20240501_100000.csv"
    wait(report.exists, timeout=30, what="the downloaded report", interval=0.5)
    assert report.read_text() == REPORT

    log_in(browser, base, VIEWER, tier.stack.viewer_password)
    browser.get(f"{base}/dataplatform/rows/{quote(KEY)}")
    assert "(read-only)" in browser.find_element(By.ID, "user").text
    assert not browser.find_elements(By.ID, "trigger") and not browser.find_elements(By.ID, "edit")
    answer = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: 'POST', body: new URLSearchParams({csrf: arguments[1]})})
          .then(r => done(r.status));""",
        f"{base}/dataplatform/rows/{quote(KEY)}/deactivate",
        csrf,
    )
    assert answer == 403
    assert tier.repository().get(KEY)["is_active"] is True
    assert all(h["change_source"] != f"ui:{VIEWER}" for h in tier.repository().history(KEY))

    def succeeded():  # the load went on meanwhile; the viewer sees it end
        browser.refresh()
        return status(browser) == "Succeeded"

    wait(succeeded, timeout=300, what=f"{KEY} to be Succeeded on its page", interval=2)
    assert tier.wait_run(KEY, run_id) == "success"  # nothing left running when the stack stops


def in_frame(driver, path: str) -> bool:
    return driver.execute_script("return location.href") == path


def test_under_a_base_url_with_a_path_the_nav_entry_the_page_its_links_and_its_calls_stay_under_it(
    page_tier, prefixed_airflow, browser
):
    import httpx
    from selenium.webdriver.common.by import By

    tier, base = page_tier, prefixed_airflow.wait().base_url  # http://127.0.0.1:<proxy port>/airflow
    assert httpx.get(f"{base.removesuffix(PREFIX)}/dataplatform/").status_code == 404  # nothing outside it

    log_in(browser, base, USER, tier.stack.password)  # the page's login redirect, and the cookie's path
    browser.get(f"{base}/")
    nav = browser.find_element(By.CSS_SELECTOR, "a[aria-label='Data platform']")
    assert nav.get_attribute("href") == f"{base}/plugin/dataplatform"
    nav.click()
    frame = browser.find_element(By.CSS_SELECTOR, "iframe[title='Data platform']")
    assert frame.get_attribute("src") == f"{base}/dataplatform/"
    browser.switch_to.frame(frame)
    try:
        assert browser.find_element(By.ID, "user").text == USER  # the page itself, logged in
        click_and_load(browser, browser.find_element(By.LINK_TEXT, KEY))
        assert in_frame(browser, f"{base}/dataplatform/rows/{KEY}") and browser.find_element(By.ID, "key").text == KEY

        # a trigger calls Airflow's REST API at [api] base_url: under the prefix, through the proxy. The DAG is
        # paused for it, so that the run stays queued and is deleted, not loaded.
        tier.call("PATCH", f"/dags/{KEY}", json={"is_paused": True})
        try:
            click_and_load(browser, browser.find_element(By.ID, "trigger"))
            said = browser.find_elements(By.ID, "message")
            assert said, browser.find_element(By.TAG_NAME, "body").text
            run_id = said[0].text.removeprefix(f"triggered {KEY}: Airflow run ")
            assert browser.execute_script("return location.pathname") == f"{PREFIX}/dataplatform/rows/{KEY}"
            run = tier.call("GET", tier.run_path(KEY, run_id))
            assert (run["triggering_user_name"], run["state"]) == (USER, "queued")
            tier.call("DELETE", tier.run_path(KEY, run_id))
        finally:
            tier.unpause(KEY)

        click_and_load(browser, browser.find_element(By.LINK_TEXT, "Control rows"))
        assert in_frame(browser, f"{base}/dataplatform/")
        click_and_load(browser, browser.find_element(By.LINK_TEXT, KEY))
        click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#state a[href$='/dags/tier.ui_orders']"))
        assert in_frame(browser, f"{base}/dags/{KEY}")  # Airflow's own page of the DAG, in the iframe
        wait(
            lambda: KEY in browser.find_element(By.TAG_NAME, "body").text,
            timeout=30,
            what="Airflow's DAG page",
            interval=0.5,
        )
        assert "Dag Not Found" not in browser.find_element(By.TAG_NAME, "body").text
    finally:
        browser.switch_to.default_content()
