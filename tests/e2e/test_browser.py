"""JupyterLab in a real browser: headless Chromium opens the notebooks and runs them.

Starts JupyterLab on loopback with a throwaway token, drives Debian's Chromium with
Playwright, runs every cell and checks what rendered: the charts as images, the tables,
the completion popup of ``%%todo_sql``, the migration trace at 1,000 px on PostgreSQL.
The screenshots are kept in ``artifacts/`` (the README's picture is a copy of the first).
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

from tests.helpers import PostgresServer
from todo_data.demo import DEMO_TASKS
from todo_data.testing import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from sqlalchemy.ext.asyncio import AsyncEngine

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
    with running_jupyterlab(tmp_path, {}) as lab:
        yield lab


@contextmanager
def running_jupyterlab(tmp_path: Path, database: dict[str, str]) -> Iterator[tuple[Callable[[str], str], Path]]:
    """JupyterLab (kernels with ``database``'s ``DATABASE_*`` settings, else the demo database)."""
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")} | database
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
def notebook_run_in_chromium(url: str, *, width: int = 1400) -> Iterator[Page]:
    """Chromium opens the notebook in JupyterLab, runs every cell and waits for each to finish.

    Yields the page once no cell printed a traceback.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1100})
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
        assert outputs.filter(has_text="showing 5 of at least 6 rows").count() == 1
        assert page.locator(".jp-OutputArea-output table").count() >= 7  # magics, head(), sql, profile
        truncated = page.locator(".jp-OutputArea-output table").filter(has_text="…")
        assert truncated.count() >= 1
        large.first.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "jupyterlab_ad_hoc_sql.png")
        # Tab after an alias: the popup lists the columns of tasks, from the database's catalog.
        page.locator(".jp-Cell").last.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")  # a new cell below, in edit mode after Enter
        page.keyboard.press("Enter")
        page.keyboard.type("%%todo_sql\nSELECT t.title FROM tasks t WHERE t.")
        page.keyboard.press("Tab")
        popup = page.locator(".jp-Completer")
        popup.wait_for(state="visible", timeout=30_000)
        items = page.locator(".jp-Completer-item").all_text_contents()
        for column in ("t.id", "t.user_id", "t.title", "t.status", "t.created_at"):
            assert any(column in item for item in items), items
        page.screenshot(path=ARTIFACTS / "jupyterlab_sql_completion.png")


def test_migrations_trace_shows_every_column_at_1000_px_on_postgresql(
    tmp_path: Path, postgres_server: PostgresServer, pg_engine: AsyncEngine
) -> None:
    """03 on PostgreSQL: the trace reads as milliseconds and lock modes, with no formula, no horizontal scroll."""
    with (
        running_jupyterlab(tmp_path, {"DATABASE_URL": postgres_server.url}) as (url, _),
        notebook_run_in_chromium(url("03_migrations.ipynb"), width=1000) as page,
    ):
        trace = page.locator(".jp-OutputArea-output").filter(has_text="ShareRowExclusiveLock").last
        trace.scroll_into_view_if_needed()
        assert trace.locator("mjx-container, .MathJax").count() == 0  # $$ … $$ is text, not math
        table = trace.locator("table")
        fits = table.evaluate(
            "t => t.getBoundingClientRect().right <= t.closest('.jp-OutputArea').getBoundingClientRect().right"
        )
        assert fits, "the trace table is wider than the notebook at 1,000 px"
        headers = table.locator("th").all_text_contents()
        assert headers == ["revision", "statement", "relation", "locks", "held", "rewritten", "duration"]
        durations = table.locator("tr td:last-child").all_text_contents()
        assert durations and all(d.endswith(" ms") for d in durations)
        assert "nan" not in table.text_content()
        page.screenshot(path=ARTIFACTS / "jupyterlab_migrations_trace.png")
