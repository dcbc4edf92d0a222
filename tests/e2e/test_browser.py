"""JupyterLab in a real browser: headless Chromium opens the first notebook and runs it.

Starts JupyterLab on loopback with a throwaway token, drives Debian's Chromium with
Playwright, runs every cell and checks that the charts rendered as images. The
screenshot is kept in ``artifacts/`` (the README's picture is a copy of it).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from todo_data.demo import DEMO_TASKS
from todo_data.testing import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI needs Chromium (Debian package chromium) for the browser test")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    return found


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[Callable[[str], str], Path]]:
    """A JupyterLab server on loopback serving a copy of the notebooks; yields (URL of a notebook, root)."""
    root = tmp_path / "lab"
    shutil.copytree(REPO_ROOT / "notebooks", root)
    settings = tmp_path / "settings"
    # Render every cell (no virtual scrolling), and no news pop-up from the internet.
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    }.items():
        path = settings / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DATABASE_POOLED"}}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    log = (tmp_path / "jupyter.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start: {(tmp_path / 'jupyter.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield (lambda notebook: f"{base}/lab/tree/{notebook}?token={token}"), root
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@contextmanager
def notebook_run_in_chromium(url: str) -> Iterator[Page]:
    """Chromium opens the notebook in JupyterLab, runs every cell and waits for each to finish.

    Yields the page once no cell printed a traceback.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            page.wait_for_function(
                "() => { const w = window.jupyterapp?.shell?.currentWidget;"
                " return w?.sessionContext?.session?.kernel?.status === 'idle'; }",
                timeout=120_000,
            )
            page.evaluate("window.jupyterapp.shell.collapseLeft()")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(
                "() => { const cells = document.querySelectorAll('.jp-CodeCell .jp-InputPrompt');"
                " return cells.length > 0 && [...cells].every(p => /\\[\\d+\\]/.test(p.textContent)); }",
                timeout=240_000,
            )
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_text_contents() if "Traceback" in t or "Error" in t]
            assert tracebacks == []
            yield page
        finally:
            browser.close()


def test_first_notebook_runs_in_jupyterlab_in_headless_chromium(
    jupyterlab: tuple[Callable[[str], str], Path],
) -> None:
    url, root = jupyterlab
    with notebook_run_in_chromium(url("01_task_distributions.ipynb")) as page:
        images = page.locator(".jp-OutputArea-output img")
        assert images.count() == 4
        assert page.evaluate(
            "() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
            ".every(img => img.complete && img.naturalWidth > 200 && img.naturalHeight > 100)"
        )
        images.first.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "jupyterlab_task_distributions.png")
    assert (root / "todo_data.db").is_file()  # the demo database was made and seeded


def test_ad_hoc_sql_notebook_runs_in_jupyterlab_in_headless_chromium(
    jupyterlab: tuple[Callable[[str], str], Path],
) -> None:
    url, _ = jupyterlab
    with notebook_run_in_chromium(url("04_ad_hoc_sql.ipynb")) as page:
        outputs = page.locator(".jp-OutputArea-output")
        # Each %%todo_sql cell shows its size, then its rows as a table; the large one truncated.
        assert outputs.filter(has_text="3 rows, 2 columns").count() == 1
        large = outputs.filter(has_text=f"{DEMO_TASKS:,} rows, 5 columns")
        assert large.count() == 1
        assert page.locator(".jp-OutputArea-output table").count() >= 6  # magics, head(), sql, profile
        truncated = page.locator(".jp-OutputArea-output table").filter(has_text="...")
        assert truncated.count() >= 1
        large.first.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "jupyterlab_ad_hoc_sql.png")
