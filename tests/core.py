"""Which layers of the core this checkout has: the workbench lands on main before or after them.

A test of something built on a missing layer is skipped with the reason; a layer that is present
but broken still fails (its import raises).
"""

from __future__ import annotations

import importlib.util

import pytest

MARKET_STACK = ("enerdatx.lab", "enerdatx.market", "enerdatx.meter", "enerdatx.ipfs")


def missing(modules: tuple[str, ...] = MARKET_STACK) -> list[str]:
    """The modules of ``modules`` that this checkout does not have."""
    return [name for name in modules if not _exists(name)]


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def skip_reason(modules: tuple[str, ...] = MARKET_STACK) -> str | None:
    """Why tests that need ``modules`` cannot run here, or None when they can."""
    absent = missing(modules)
    return f"not on this branch yet: {', '.join(absent)}" if absent else None


def require(modules: tuple[str, ...] = MARKET_STACK) -> None:
    """Skip the calling test module when one of ``modules`` has not landed (call before importing them)."""
    reason = skip_reason(modules)
    if reason is not None:
        pytest.skip(reason, allow_module_level=True)
