"""Print binder/requirements.txt from pyproject.toml: the runtime dependencies and the notebook extra.

    python tools/binder_requirements.py > binder/requirements.txt

tests/notebooks/test_binder.py checks that the two agree.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

HEADER = """\
# Binder (repo2docker): what the notebooks need; the same requirements as pyproject.toml's
# dependencies and its `notebook` extra (tests/notebooks/test_binder.py checks; regenerate with
# `python tools/binder_requirements.py > binder/requirements.txt`). postBuild installs EnerDatX.
"""


def main() -> None:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    print(HEADER + "\n".join(project["dependencies"] + project["optional-dependencies"]["notebook"]))


if __name__ == "__main__":
    main()
