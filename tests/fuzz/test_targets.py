"""Every fuzz target under hypothesis (random and mutated seeds), and every saved crasher."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.seeds import seeds
from fuzz.targets import TARGETS

ROOT = Path(__file__).parent.parent.parent
CRASHERS = ROOT / "fuzz" / "crashers"


def mutations(name):
    """Seeds with bytes flipped, cut or inserted: inputs that pass the first checks."""
    base = seeds(name) or [b""]
    return st.tuples(
        st.sampled_from(base), st.integers(0, 4096), st.binary(max_size=8), st.integers(0, 3)
    ).map(lambda t: _mutate(*t))


def _mutate(seed, position, patch, mode):
    position = position % (len(seed) + 1)
    if mode == 0:
        return seed[:position] + patch + seed[position + len(patch) :]
    if mode == 1:
        return seed[:position] + patch + seed[position:]
    if mode == 2:
        return seed[:position]
    return seed[:position] + seed[position + len(patch) + 1 :]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_accepts_its_seeds(name):
    for data in seeds(name):
        TARGETS[name](data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_survives_random_and_mutated_input(name):
    @given(st.one_of(st.binary(max_size=2048), mutations(name)))
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def run(data):
        TARGETS[name](data)

    run()


def _saved_crashers():
    if not CRASHERS.exists():
        return []
    return sorted(path for path in CRASHERS.glob("*/*") if path.is_file())


@pytest.mark.parametrize("path", _saved_crashers(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_saved_crashers_stay_fixed(path):
    TARGETS[path.parent.name](path.read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_coverage_guided_run_finds_no_crasher(name, tmp_path):
    pytest.importorskip("atheris")
    seconds = int(os.environ.get("ENERDATX_FUZZ_SECONDS", "5"))
    before = set(CRASHERS.glob(f"{name}/*"))
    run = subprocess.run(
        [sys.executable, "-m", "fuzz.run", name, "--", f"-max_total_time={seconds}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    new = set(CRASHERS.glob(f"{name}/*")) - before
    assert run.returncode == 0 and not new, (run.stderr[-3000:], new)
    assert "Done" in run.stderr
