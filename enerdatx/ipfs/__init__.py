"""Content store: kubo-identical UnixFS CIDs without a daemon, or a real IPFS daemon.

``open_store(directory).add_bytes(b"hello world\\n")`` gives
``QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o``, as kubo's ``ipfs add`` does.
``open_store`` gives an ``EmbeddedStore`` unless a daemon is configured (``api=`` or
``$ENERDATX_IPFS_API``), then a ``KuboStore``. Formats: docs/content-addressing.md.
"""

from __future__ import annotations

from enerdatx.ipfs.kubo import KuboStore
from enerdatx.ipfs.store import API_ENV, REPO_ENV, ContentStore, EmbeddedStore, default_repo, open_store

__all__ = ["ContentStore", "EmbeddedStore", "KuboStore", "open_store", "default_repo", "API_ENV", "REPO_ENV"]
