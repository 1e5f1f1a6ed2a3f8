"""Jupyter panels over EnerDatX's public API (imported as ``enerdatx.widgets``).

Each panel is a small ipywidgets container that shows errors as messages and long work as a
progress bar; :class:`Workbench` puts them together.
"""

from enerdatx.widgets.chain import ChainExplorer, chain_frame, fraud_frame, trade_graph
from enerdatx.widgets.panel import Panel, short_key

__all__ = ["ChainExplorer", "Panel", "chain_frame", "fraud_frame", "short_key", "trade_graph"]
