"""nbval runs every notebook here; one built on a layer of the core that has not landed is skipped."""

from __future__ import annotations

import pytest

from tests.core import MARKET_STACK, skip_reason

# Beyond the ledger, which is always there.
NEEDS = {
    "01_quickstart.ipynb": MARKET_STACK,
    "02_meter_data_sources.ipynb": ("enerdatx.meter",),
    "04_market_at_scale.ipynb": MARKET_STACK,
    "05_rest_api.ipynb": (*MARKET_STACK, "enerdatx.market.rest"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = skip_reason(NEEDS[item.path.name]) if item.path.name in NEEDS else None
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
