# The two commands a newcomer needs (README.md): `make demo` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: demo test test-fast install-test-deps

demo:
	$(PIP) install -e .
	$(PYTHON) -m enerdatx demo

# Everything, slow suites included (real IPFS daemons, real browser, many peers).
test: install-test-deps
	$(PYTHON) -m pytest

# The default run without the slow suites, for quick local iterations.
test-fast:
	$(PIP) install -e ".[test]"
	$(PYTHON) -m pytest -m "not slow"

install-test-deps:
	$(PIP) install -e ".[test]"
	bash tools/install-system-deps.sh
