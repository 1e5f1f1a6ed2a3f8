"""Package discovery only; everything else is in pyproject.toml.

The top-level ``widgets/`` directory is installed as ``enerdatx.widgets`` (pyproject's
package-dir); discovery finds the ``enerdatx`` packages, and this adds that one.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["enerdatx", "enerdatx.*"]), "enerdatx.widgets"])
