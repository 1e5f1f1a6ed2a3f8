"""Content store: kubo-identical UnixFS CIDs without a daemon, or a real IPFS daemon.

``open_store(directory).add_bytes(b"hello world\\n")`` gives
``QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o``, as kubo's ``ipfs add`` does.
``open_store`` gives an ``EmbeddedStore`` unless a daemon is configured (``api=`` or
``$ENERDATX_IPFS_API``), then a ``KuboStore``. The interface is ``store.py``, the stores
``embedded.py`` and ``kubo.py``; the daemon client is imported only with a daemon. Formats: docs/content-addressing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from enerdatx.ipfs.embedded import EmbeddedStore
from enerdatx.ipfs.store import API_ENV, REPO_ENV, ContentStore, default_repo, open_store

if TYPE_CHECKING:
    from enerdatx.ipfs.kubo import KuboStore

__all__ = ["ContentStore", "EmbeddedStore", "KuboStore", "open_store", "default_repo", "API_ENV", "REPO_ENV"]


def __getattr__(name: str) -> object:
    # KuboStore loads the daemon client (ipfshttpclient): only for those who ask for it.
    if name == "KuboStore":
        from enerdatx.ipfs.kubo import KuboStore  # noqa: PLC0415

        return KuboStore
    raise AttributeError(f"module 'enerdatx.ipfs' has no attribute {name!r}")
