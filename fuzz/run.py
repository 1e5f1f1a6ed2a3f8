"""Coverage-guided fuzzing of one target with atheris (libFuzzer).

    python -m fuzz.run halfblock -- -max_total_time=60

Options after ``--`` go to libFuzzer. The corpus lives in fuzz/corpus/TARGET (seeded from
the test vectors); crashers are written to fuzz/crashers/TARGET and replayed by
tests/fuzz/test_crashers.py forever after.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

HERE = Path(__file__).parent


def main(argv: list[str]) -> None:
    """Fuzz the target named in argv[1]; the rest goes to libFuzzer."""
    if len(argv) < 2:
        raise SystemExit("usage: python -m fuzz.run TARGET [-- libFuzzer options]")
    name, options = argv[1], [arg for arg in argv[2:] if arg != "--"]
    with atheris.instrument_imports(include=["enerdatx"]):
        from fuzz.seeds import write_seeds
        from fuzz.targets import TARGETS
    if name not in TARGETS:
        raise SystemExit(f"unknown target {name!r}; known: {', '.join(sorted(TARGETS))}")
    corpus = HERE / "corpus" / name
    crashers = HERE / "crashers" / name
    corpus.mkdir(parents=True, exist_ok=True)
    crashers.mkdir(parents=True, exist_ok=True)
    write_seeds(name, corpus)
    fuzz_one = TARGETS[name]
    atheris.Setup(
        [argv[0], *options, f"-artifact_prefix={crashers}/", "-rss_limit_mb=2048", str(corpus)],
        fuzz_one,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
