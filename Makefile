# The two commands a newcomer needs (README.md): `make demo` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: demo test test-fast lint install-test-deps

demo:
	$(PIP) install -e .
	$(PYTHON) -m enerdatx demo

# Everything, slow suites included (real IPFS daemons, real browser, many peers).
test: install-test-deps lint
	$(PYTHON) -m pytest -m "slow or not slow"

# The default run without the slow suites, for quick local iterations.
test-fast:
	$(PIP) install -e ".[test]"
	$(MAKE) lint
	$(PYTHON) -m pytest -m "not slow"

# Types (mypy; strict on trustchain, market, ipfs) and lint (ruff), as configured in pyproject.toml.
lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

install-test-deps:
	$(PIP) install -e ".[test]"
	bash tools/install-system-deps.sh
