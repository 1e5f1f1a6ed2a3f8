"""The notebooks and their widgets in a real browser (slow: starts JupyterLab and chromium)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.lab import open_notebook, run_all_cells

pytestmark = pytest.mark.slow

QUICKSTART = "notebooks/01_quickstart.ipynb"
TRUSTCHAIN = "notebooks/03_trustchain_inside.ipynb"


def test_trustchain_notebook_renders_the_chain_explorer(page, jupyter_lab):
    open_notebook(page, jupyter_lab.lab_url(TRUSTCHAIN), TRUSTCHAIN)
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


def test_quickstart_sells_and_buys_from_the_widgets_and_plots_the_decrypted_data(page, jupyter_lab):
    open_notebook(page, jupyter_lab.lab_url(QUICKSTART), QUICKSTART)
    run_all_cells(page)  # the notebook trades through the API and stops its peers at the end
    workbench = page.locator(".edx-workbench")
    workbench.scroll_into_view_if_needed()
    page.get_by_role("tab", name="Peers").click()
    page.locator("button.edx-start-peers").click()
    page.locator(".edx-peers").get_by_text("peer-002").wait_for(timeout=60_000)

    page.get_by_role("tab", name="Market").click()
    page.locator("button.edx-sell").click()
    page.locator(".edx-info", has_text="listed").wait_for(timeout=30_000)
    page.locator("button.edx-buy").click()
    # a purchase switches to the Purchases tab and plots the data the buyer decrypted
    plot = page.locator(".edx-purchase-plot .js-plotly-plot")
    plot.wait_for(timeout=30_000)
    assert "decrypted and verified" in page.locator(".edx-info", has_text="decrypted").inner_text()
    assert "peer-000" in page.locator(".edx-purchases").inner_text()
    workbench.scroll_into_view_if_needed()
    page.mouse.move(0, 0)  # no hover tooltips in the picture
    ARTIFACTS.mkdir(exist_ok=True)
    workbench.screenshot(path=str(ARTIFACTS / "workbench.png"))

    # the Subscriptions tab: a meter on loopback, an offer, a subscriber, a period paid for and plotted
    page.get_by_role("tab", name="Subscriptions").click()
    page.locator("button.edx-start-meter").click()
    page.locator(".edx-info", has_text="reads a meter at tcp://127.0.0.1:").wait_for(timeout=30_000)
    page.locator("button.edx-offer").click()
    # the offer reaches the subscriber by gossip; the workbench redraws when its block lands
    page.locator(".edx-offer-choice select option").first.wait_for(state="attached", timeout=30_000)
    page.locator("button.edx-subscribe").click()
    page.locator(".edx-info", has_text="subscribed").wait_for(timeout=30_000)
    page.locator("button.edx-send-period").click()
    page.locator(".edx-info", has_text="paid and decrypted by peer-").wait_for(timeout=30_000)
    page.locator(".edx-subscriptions-plot .js-plotly-plot").wait_for(timeout=30_000)
    assert "active" in page.locator(".edx-consent").inner_text()
    page.mouse.move(0, 0)
    workbench.screenshot(path=str(ARTIFACTS / "workbench-subscriptions.png"))
    assert jupyter_lab.outside_requests == []
