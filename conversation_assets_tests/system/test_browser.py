"""The Dagster UI in a real browser, as a data engineer uses it: no GraphQL shortcuts.

Debian's ``chromium`` driven by Playwright (Playwright's own browser download is not used): the
deployment of ``support/sandboxed_deployment.py`` (sandbox, ``dagster-webserver``,
``dagster-daemon`` on a fresh ``DAGSTER_HOME``), then the asset page, the Materialize dialog for
one month, the run page until it says Success, the same dialog for a backfill of three months,
the backfill page until it says Succeeded, the DuckDB file and the Partitions tab.

Every step leaves a screenshot in a folder named in any failure message: under pytest's tmp
folder, or ``CONVERSATION_ASSETS_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import playwright.sync_api as playwright_api
import pytest

from conversation_assets_tests.support.helpers import month_window
from conversation_assets_tests.support.sandboxed_deployment import (
    SandboxedDeployment,
    Setup,
    running_deployment,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ASSET_PAGE = "/assets/dixa/conversation_export"
#: Bounded waits (milliseconds): a page or a click, and a run or a backfill on a busy machine.
UI_TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 300_000

#: Set to a folder (``docs/img``) to also take the README's pictures from this run.
PICTURES = os.environ.get("CONVERSATION_ASSETS_PICTURES")

ONE_MONTH = "2024-04-01"
BACKFILL = ["2024-01-01", "2024-02-01", "2024-03-01"]


def chromium_or_skip() -> str:
    """The Chromium binary; a skip with the reason outside CI, a failure in CI."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    reason = (
        f"Chromium is not installed at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI installs it in .ci/run, so this is a broken CI setup")
    pytest.skip(reason)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the steps' screenshots go (emptied first)."""
    folder = Path(os.environ.get("CONVERSATION_ASSETS_SCREENSHOTS") or tmp_path / "screenshots")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def page(screenshots: Path) -> Iterator[playwright_api.Page]:
    """A fresh Chromium page (1400x900), closed with its browser at the end."""
    executable = chromium_or_skip()
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(UI_TIMEOUT_MS)
            new_page = context.new_page()
            dismiss_community_dialog_whenever_it_shows(new_page)
            yield new_page
        finally:
            browser.close()


COMMUNITY_DIALOG = "Join the Dagster community"


def dismiss_community_dialog_whenever_it_shows(page: playwright_api.Page) -> None:
    """Dagster's first-visit dialog (once per instance) may cover the page at any moment."""
    skip = page.get_by_role("button", name="Skip", exact=True)

    def dismiss() -> None:
        if skip.is_visible():  # it may be fading out already: then there is nothing to do
            skip.click(timeout=5_000)

    page.add_locator_handler(page.get_by_text(COMMUNITY_DIALOG), dismiss, no_wait_after=True)


def open_first_page(page: playwright_api.Page, url: str) -> None:
    """Open ``url`` and get the first-visit dialog out of the way if it comes (it comes late)."""
    page.goto(url)
    dialog = page.get_by_text(COMMUNITY_DIALOG)
    try:
        dialog.wait_for(state="visible", timeout=15_000)
    except playwright_api.TimeoutError:
        return  # shown before (the instance remembers), or not at all
    page.get_by_role("button", name="Skip", exact=True).click()
    dialog.wait_for(state="hidden")


class Steps:
    """Numbered steps, each ending with a screenshot; a failing step says where they are."""

    def __init__(self, page: playwright_api.Page, folder: Path) -> None:
        self.page, self.folder, self.count = page, folder, 0

    def shot(self, name: str) -> Path:
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=path)
        return path

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.count += 1
        try:
            yield
        except Exception as error:
            try:
                self.shot(f"{name}-FAILED")
                (self.folder / f"{self.count:02d}-{name}-FAILED.html").write_text(
                    self.page.content()
                )
            except Exception:  # the page itself may be gone
                pass
            raise AssertionError(
                f"step {self.count} ({name}) failed at {self.page.url}: {error}\n"
                f"screenshots of every step: {self.folder}"
            ) from error
        self.shot(name)


def materialize_dialog(page: playwright_api.Page, selection: str) -> playwright_api.Locator:
    """Open Materialize… on the asset page, select ``selection`` among all partitions."""
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    # The picker opens on the last 90 days: the sandbox's months are older than that.
    dialog.get_by_text("Show all partitions").click()
    playwright_api.expect(dialog.get_by_text("All time")).to_be_visible()
    partitions = dialog.locator("input[type=text]").first
    partitions.fill(selection)
    partitions.press("Enter")
    return dialog


def launch_and_view(page: playwright_api.Page, dialog: playwright_api.Locator, label: str) -> None:
    """Click the dialog's launch button (``label``) and follow the toast's View link."""
    dialog.get_by_role("button", name=label, exact=True).click()
    playwright_api.expect(dialog).to_be_hidden()
    # The toast ("Launched run 1a2b3c4d" / a backfill's) links to the run or backfill page.
    toast = page.locator("section li").filter(has_text=re.compile(r"run|backfill", re.I))
    toast.get_by_role("link", name="View", exact=True).last.click()


def wait_for_status(
    page: playwright_api.Page, read: Callable[[], str | None], good: str, bad: set[str]
) -> None:
    """Wait (bounded) until ``read()`` says ``good``; fail as soon as it says one of ``bad``."""
    waited_ms = 0
    status = None
    while waited_ms < RUN_TIMEOUT_MS:
        status = read()
        if status == good:
            return
        assert status not in bad, f"the page says {status!r}, not {good!r}"
        page.wait_for_timeout(2_000)
        waited_ms += 2_000
    raise AssertionError(f"still {status!r}, not {good!r}, after {RUN_TIMEOUT_MS / 1000:g}s")


def run_status(page: playwright_api.Page) -> Callable[[], str | None]:
    """The run page's status tag (in the header, next to the partition tag)."""

    def read() -> str | None:
        for text in ("Success", "Failure", "Canceled", "Started", "Queued", "Starting"):
            if page.get_by_text(text, exact=True).first.is_visible():
                return text
        return None

    return read


def backfill_status(page: playwright_api.Page) -> Callable[[], str | None]:
    """The backfill page's Status field (its table also has a "Failed" column header)."""
    label = page.get_by_text("Status", exact=True).first
    field = label.locator("xpath=following-sibling::*[1]")
    return lambda: field.inner_text().strip() if field.count() else None


def ids_by_month(deployment: SandboxedDeployment) -> dict[str, set[int]]:
    """The loaded ids grouped by the month of their ``updated_at`` (UTC)."""
    deployment.loaded_ids()  # waits until no run holds the file
    with duckdb.connect(str(deployment.database), read_only=True) as connection:
        rows = connection.execute(
            "SELECT strftime(make_timestamp(updated_at * 1000), '%Y-%m-01'), list(id) "
            "FROM dixa.conversation_export GROUP BY 1"
        ).fetchall()
    return {month: set(ids) for month, ids in rows}


def take_pictures(page: playwright_api.Page, url: str, run_url: str, backfill_url: str) -> None:
    """The README's pictures: the same pages at 0.7x scale, cropped to what they show."""
    assert PICTURES
    folder = Path(PICTURES)
    folder.mkdir(parents=True, exist_ok=True)
    browser = page.context.browser
    assert browser is not None
    context = browser.new_context(viewport={"width": 1280, "height": 760}, device_scale_factor=0.7)
    context.set_default_timeout(UI_TIMEOUT_MS)
    small = context.new_page()
    dismiss_community_dialog_whenever_it_shows(small)
    try:
        small.goto(url + ASSET_PAGE + "?view=partitions")
        small.get_by_placeholder("Filter by name").fill(BACKFILL[1])
        small.get_by_title(BACKFILL[1], exact=True).click()
        playwright_api.expect(small.get_by_text("conversations_loaded")).to_be_visible()
        small.screenshot(path=folder / "ui-partitions.png")

        small.goto(backfill_url)
        playwright_api.expect(small.get_by_text("Succeeded", exact=True).first).to_be_visible()
        small.screenshot(path=folder / "ui-backfill.png", clip=CLIP_TOP)

        small.goto(run_url)
        playwright_api.expect(small.get_by_text("Success", exact=True).first).to_be_visible()
        small.screenshot(path=folder / "ui-run.png")

        small.goto(url + ASSET_PAGE + "?view=checks")
        playwright_api.expect(small.get_by_text("no_duplicate_ids").first).to_be_visible()
        small.wait_for_timeout(1_000)
        small.screenshot(path=folder / "ui-checks.png", clip=CLIP_TOP)
    finally:
        context.close()


#: The top of a page (CSS pixels): where the backfill and check pages say what they have to say.
CLIP_TOP = {"x": 0, "y": 0, "width": 1280, "height": 420}


def test_materialize_and_backfill_from_the_asset_page(
    page: playwright_api.Page, screenshots: Path, tmp_path: Path
) -> None:
    steps = Steps(page, screenshots)
    with running_deployment(Setup(), tmp_path) as deployment:
        url = deployment.dagster.webserver_url

        with steps.step("asset-page"):
            open_first_page(page, url + ASSET_PAGE)
            playwright_api.expect(page.get_by_role("button", name="Materialize…")).to_be_enabled()

        with steps.step("materialize-one-month-dialog"):
            dialog = materialize_dialog(page, ONE_MONTH)
            playwright_api.expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()

        with steps.step("run-page-success"):
            launch_and_view(page, dialog, "Launch 1 run")
            playwright_api.expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
            wait_for_status(page, run_status(page), "Success", {"Failure", "Canceled"})
            run_url = page.url

        with steps.step("backfill-dialog"):
            page.goto(url + ASSET_PAGE)
            dialog = materialize_dialog(page, f"[{BACKFILL[0]}...{BACKFILL[-1]}]")
            playwright_api.expect(dialog.get_by_text("3 partitions", exact=True)).to_be_visible()

        with steps.step("backfill-page-succeeded"):
            launch_and_view(page, dialog, "Launch backfill")
            playwright_api.expect(page).to_have_url(re.compile(r"/runs/b/"))
            wait_for_status(page, backfill_status(page), "Succeeded", {"Failed", "Canceled"})
            backfill_url = page.url

        with steps.step("duckdb-file"):
            # Each month exactly as the sandbox serves it: one run per partition, nothing twice.
            months = sorted([*BACKFILL, ONE_MONTH])
            loaded = ids_by_month(deployment)
            assert sorted(loaded) == months
            for key in months:
                expected = deployment.setup.expected_ids(month_window(key))
                assert loaded[key] == expected, f"{key}: {len(loaded[key])} of {len(expected)}"
            assert len(deployment.loaded_ids()) == sum(len(ids) for ids in loaded.values())
            runs = deployment.dagster.graphql.runs()
            ui_runs = [run for run in runs if run["partition"] in months]
            assert sorted(run["partition"] for run in ui_runs) == months, ui_runs
            assert all(run["status"] == "SUCCESS" for run in ui_runs), ui_runs

        with steps.step("partitions-tab"):
            page.goto(url + ASSET_PAGE + "?view=partitions")
            playwright_api.expect(page.get_by_text("Materialized (4)")).to_be_visible()
            playwright_api.expect(page.get_by_text("Failed (0)")).to_be_visible()
            page.get_by_placeholder("Filter by name").fill(BACKFILL[1])
            page.get_by_title(BACKFILL[1], exact=True).click()
            playwright_api.expect(page.get_by_text("conversations_loaded")).to_be_visible()

        with steps.step("checks-tab"):
            page.goto(url + ASSET_PAGE + "?view=checks")
            playwright_api.expect(page.get_by_text("no_duplicate_ids").first).to_be_visible()

        if PICTURES:
            take_pictures(page, url, run_url, backfill_url)
