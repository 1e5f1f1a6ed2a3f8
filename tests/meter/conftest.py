"""Shared helpers for the meter tests: small synthetic households and telegram surgery."""

from __future__ import annotations

import pandas as pd
import pytest

from enerdatx.meter import synthetic_household
from enerdatx.meter.telegrams import crc16_arc


@pytest.fixture(scope="session")
def day_10s() -> pd.DataFrame:
    """Two hours of a household at 10 s, with PV and gas (720 readings)."""
    frame = synthetic_household(seed=3, start="2026-06-01T10:00:00Z", days=1, resolution="10s", pv=True, gas=True)
    return frame.iloc[:721]


@pytest.fixture(scope="session")
def month_15min() -> pd.DataFrame:
    return synthetic_household(seed=1, start="2026-01-01", days=31, resolution="15min", pv=True, gas=True,
                               location="2628", household_type="family")


def recrc(telegram: str) -> str:
    """Give an edited telegram a correct CRC again (so only the edit is wrong)."""
    body = telegram[: telegram.rindex("!") + 1]
    return body + f"{crc16_arc(body.encode('ascii')):04X}\r\n"
