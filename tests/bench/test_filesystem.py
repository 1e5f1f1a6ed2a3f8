"""The file-creation probe that benchmarks report beside their figures."""

from __future__ import annotations

import os

from enerdatx.bench.filesystem import PROBE_BYTES, file_create_us


def test_the_probe_times_whole_files_and_leaves_them_for_the_directory(tmp_path):
    assert file_create_us(tmp_path, samples=20) > 0
    assert file_create_us(tmp_path, samples=5) > 0  # a second probe adds files, it does not collide
    folder = tmp_path / "file-create-probe"
    names = sorted(os.listdir(folder), key=int)
    assert names == [str(n) for n in range(25)]  # renamed into place: no temporary file is left
    assert all((folder / name).stat().st_size == PROBE_BYTES for name in names)
