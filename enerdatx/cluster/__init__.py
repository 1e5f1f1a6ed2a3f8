"""Experiments beyond one process: peers on Dask workers, light peers for 10,000-peer runs, shared scenarios.

- :class:`DaskLab` (what ``Lab(workers=N)`` and ``Lab(cluster=client)`` give): one group of peers per
  Dask worker, real UDP between them, results as pandas DataFrames.
- :class:`PeerGroup`: the peers of one process, driven by plain values (a Dask actor on a worker).
- :mod:`enerdatx.cluster.scenarios`: market and fraud runs that take either kind of lab.
- :class:`LightPeer`: an in-memory peer with the same validation, for very large experiments.
"""

from enerdatx.cluster.dasklab import DaskLab
from enerdatx.cluster.group import PeerGroup
from enerdatx.cluster.groups import Groups, groups_of
from enerdatx.cluster.light import AddressBook, LightPeer

__all__ = ["AddressBook", "DaskLab", "Groups", "LightPeer", "PeerGroup", "groups_of"]
