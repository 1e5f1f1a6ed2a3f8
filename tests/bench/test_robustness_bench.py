"""``enerdatx bench robustness --markdown PATH`` refuses a path it cannot write before the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from enerdatx.bench import robustness
from enerdatx.cli import main


@pytest.mark.parametrize(("where", "message"), [
    (".", "is a directory"),
    ("nowhere/out.md", "no such directory"),
    ("file.txt/out.md", "is not a directory"),
])
def test_an_unwritable_markdown_path_is_refused(tmp_path: Path, where: str, message: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=message):
        robustness.check_writable(tmp_path / where, "--markdown")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only directory")
def test_a_markdown_path_in_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(ValueError, match="cannot write there"):
        robustness.check_writable(locked / "out.md", "--markdown")


def test_the_check_neither_truncates_nor_leaves_a_file(tmp_path: Path) -> None:
    (tmp_path / "old.md").write_text("kept")
    robustness.check_writable(tmp_path / "old.md", "--markdown")
    robustness.check_writable(tmp_path / "new.md", "--markdown")
    assert (tmp_path / "old.md").read_text() == "kept" and not (tmp_path / "new.md").exists()


def test_the_markdown_path_is_checked_before_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Before: the whole run first, then IsADirectoryError on writing the tables.
    async def must_not_run(*_args: object) -> dict:
        raise AssertionError("the benchmark ran before its --markdown path was checked")

    monkeypatch.setattr(robustness, "_fraud_figures", must_not_run)
    argv = ["bench", "robustness", "--only", "fraud", "--fraud-runs", "1", "--markdown", str(tmp_path)]
    assert main(argv) == 1
    assert "--markdown" in capsys.readouterr().err


def test_tables_that_fail_to_be_written_leave_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: the file was opened (and emptied) first, then the write failed: the old tables were gone.
    async def figures(*_args: object) -> dict:
        return {"runs": 1}

    monkeypatch.setattr(robustness, "_fraud_figures", figures)
    monkeypatch.setattr(robustness, "markdown", lambda result: "| tables |\n\udcff")  # cannot be written as UTF-8
    (tmp_path / "r.md").write_text("the old tables")
    argv = ["bench", "robustness", "--only", "fraud", "--fraud-runs", "1", "--markdown", str(tmp_path / "r.md")]
    assert main(argv) == 1
    assert (tmp_path / "r.md").read_text() == "the old tables"
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]  # and no temporary file left
