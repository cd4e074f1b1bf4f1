"""One real Airflow deployment for every browser test, and a headless Chromium per test.

The deployment (tests/system/deployment/harness.py) costs 15-30 s to start on two cores, so the
browser tests share it (package scope: it stops after the last of them). Chromium is Debian's
package driven by playwright; ``playwright install`` (a downloaded browser) is never used.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Installed by scripts/test.sh (the dev extra): a missing one is an error, never a silent skip.
from playwright import sync_api

from tests.system.deployment.harness import ADMIN_PASSWORD, ADMIN_USER, RunningDeployment

# Chromium too: scripts/test.sh installs Debian's package.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    raise RuntimeError(
        "the browser tests need Chromium from the OS packages: apt-get install chromium"
    )

REPO = Path(__file__).resolve().parents[3]
CHAT = "example_mistral_batch_chat"
BAD_INPUT = "test_plugin_ui_bad_input"  # integration/plugins/dag_files: fails on its input
HOSTILE = "test_plugin_hostile_server"  # integration/plugins/dag_files: mistral_hostile
TIMEOUT_MS = 60_000


@pytest.fixture(scope="package")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDeployment]:
    """Airflow with the chat example and the plugin's test DAGs, behind ``mistral_default``
    the emulator; killed after the last browser test."""
    from tests.system.deployment.harness import running_deployment

    home = tmp_path_factory.mktemp("airflow-ui")
    (home / "results").mkdir()
    env = {
        "MISTRAL_EXAMPLE_RESULTS": f"file://{home}/results",
        "MISTRAL_EXAMPLE_POLL_SECONDS": "1",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the connection list's Test button
    }
    folders = [REPO / "example_dags", REPO / "tests" / "integration" / "plugins" / "dag_files"]
    dag_ids = [CHAT, BAD_INPUT, HOSTILE]
    with running_deployment(home, folders, dag_ids, extra_env=env) as running:
        yield running


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A page of a fresh headless Chromium (downloads accepted)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1400, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def shot(page: Any, tmp_path: Path, name: str) -> None:
    """A screenshot in the test's temporary folder (and in ``MISTRAL_UI_SCREENSHOTS``)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    target = os.environ.get("MISTRAL_UI_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / path.name)


def log_in(
    page: Any, base_url: str, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD
) -> None:
    """Log in through Airflow's login page."""
    page.goto(f"{base_url}/")
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/).*$"))
