"""binder/ launches the notebooks on Binder: it must ask for exactly what pyproject.toml asks for."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def _normalized(lines: list[str]) -> dict[str, str]:
    requirements = [Requirement(line) for line in lines]
    return {req.name.lower().replace("_", "-"): str(req.specifier) for req in requirements}


def pyproject_requirements() -> dict[str, str]:
    """Runtime dependencies plus the `notebook` extra (JupyterLab), by normalized name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return _normalized(project["dependencies"] + project["optional-dependencies"]["notebook"])


def binder_requirements() -> dict[str, str]:
    lines = (REPO / "binder" / "requirements.txt").read_text().splitlines()
    return _normalized([line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()])


def test_binder_requirements_match_pyproject():
    binder, pyproject = binder_requirements(), pyproject_requirements()
    fix = "regenerate it: python tools/binder_requirements.py > binder/requirements.txt"
    assert sorted(set(pyproject) - set(binder)) == [], f"missing from binder/requirements.txt; {fix}"
    assert sorted(set(binder) - set(pyproject)) == [], "in binder/requirements.txt but not in pyproject.toml"
    assert {name: spec for name, spec in binder.items() if pyproject[name] != spec} == {}


def test_postbuild_installs_the_package_itself():
    post_build = REPO / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    assert "pip install --no-deps --editable ." in post_build.read_text()


def test_binder_pins_the_python_the_project_requires():
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-")
    assert runtime.removeprefix("python-") in _specifier_versions(requires)


def _specifier_versions(specifier: str) -> list[str]:
    from packaging.specifiers import SpecifierSet

    return [f"3.{minor}" for minor in range(8, 20) if f"3.{minor}" in SpecifierSet(specifier)]
