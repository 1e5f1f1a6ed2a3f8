"""Fixtures of the market tests; the builders they use live in tests/support/market.py."""

from __future__ import annotations

import pytest

from tests.support.market import Town


@pytest.fixture
def town() -> Town:
    return Town()
