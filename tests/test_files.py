"""enerdatx.files: output files written whole or not at all."""

from __future__ import annotations

import gzip
import os
import re

import pytest

from enerdatx.errors import StorageError
from enerdatx.files import atomic_output
from enerdatx.meter import read_csv, synthetic_household, write_csv


@pytest.mark.parametrize("name", ["x" * 251 + ".csv", "é" * 124 + ".csv.gz"], ids=["255 bytes", "254 bytes of UTF-8"])
def test_a_file_with_a_name_near_the_longest_is_written(tmp_path, name: str) -> None:
    # The temporary beside it was named "." + 8 characters + "." + its whole name: longer than
    # any file name may be ("File name too long"), so no such file could be written.
    assert len(os.fsencode(name)) <= os.pathconf(tmp_path, "PC_NAME_MAX")
    with atomic_output(tmp_path / name) as out:
        out.write(b"readings\n")
    assert [path.name for path in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_bytes() == b"readings\n"


def test_a_long_name_keeps_the_suffix_that_picks_the_compression(tmp_path) -> None:
    readings = synthetic_household(days=1)
    path = tmp_path / ("r" * 248 + ".csv.gz")
    write_csv(readings, path)
    assert gzip.decompress(path.read_bytes()).startswith(b"timestamp,")
    assert len(read_csv(path)) == len(readings)


@pytest.mark.parametrize("name", ["new/", "new/."])
def test_a_path_ending_in_a_directory_name_is_not_written_as_a_file(tmp_path, name: str) -> None:
    # Path drops the "/": write_csv(frame, "new/") wrote a file named "new".
    with pytest.raises(StorageError, match=f"^{re.escape(str(tmp_path))}/{re.escape(name)}: cannot write the readings: "
                                           "is a directory$"):
        write_csv(synthetic_household(days=1), f"{tmp_path}/{name}")
    assert list(tmp_path.iterdir()) == []
