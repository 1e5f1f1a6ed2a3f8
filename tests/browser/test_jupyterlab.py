"""The notebooks and their widgets in a real browser (slow: starts JupyterLab and chromium)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.lab import open_notebook, run_all_cells

pytestmark = pytest.mark.slow


def test_trustchain_notebook_renders_the_chain_explorer(page, jupyter_lab):
    open_notebook(page, jupyter_lab.lab_url("03_trustchain_inside.ipynb"), "03_trustchain_inside.ipynb")
    run_all_cells(page)
    explorer = page.locator(".edx-chain")
    explorer.first.wait_for(timeout=30_000)
    assert "mallory" in page.locator(".edx-fraud").first.inner_text()
    # the trade graph twice: once as cell output, once inside the explorer's Output widget
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=30_000)
    explorer.first.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chain-explorer.png"))
    assert jupyter_lab.outside_requests == []
