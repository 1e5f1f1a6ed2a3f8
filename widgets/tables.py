"""DataFrames as compact HTML tables for panels, and the names panels give peers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from enerdatx.peer import Peer

__all__ = ["frame_html", "peer_name"]

_STYLE = (
    "<style>.edx-table{border-collapse:collapse;font-size:12px}"
    ".edx-table th,.edx-table td{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}"
    ".edx-table th{background:#f3f3f3}</style>"
)


def frame_html(frame: pd.DataFrame, css_class: str, *, empty: str = "nothing yet", index: bool = True) -> str:
    """``frame`` as a styled HTML table (with CSS class ``css_class``), or ``empty`` in italics."""
    if frame.empty:
        return f'<i class="{css_class}-empty">{empty}</i>'
    table: str = frame.to_html(classes=f"edx-table {css_class}", border=0, index=index, escape=True)
    return _STYLE + table


def peer_name(peer: Peer) -> str:
    """A lab peer's name on screen: its directory's name (peer-000, peer-001, ...)."""
    return peer.directory.name
