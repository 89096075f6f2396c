# Every target creates .venv and installs what it needs when missing.
# torch==2.13.0 goes in first: it is a CPU wheel on local disk; anything else pulls a CUDA build.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.exportkit-installed
PYTEST := $(PY) -m pytest

.PHONY: demo test test-slow lint typecheck bench browser check clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The Netron browser tests (all `slow`) drive Debian's chromium; install it when missing (needs
# root and apt). Only test-slow needs it: `make test` needs nothing beyond .venv.
# Netron writes tensor shapes between 〈 〉 (U+3008/9): a CJK font draws them in screenshots.
# Graphviz's dot draws the graph of the HTML report (--html).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	@command -v dot >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; }
	@fc-list ':charset=3008' | grep -q . || { apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei >/dev/null; }

demo: $(STAMP)
	$(VENV)/bin/exportkit view examples/simple_net.py:SimpleNet --dynamic batch -o out/simple_net/simple_net.onnx

# Two workers (pytest-xdist): the fast suite runs in about a minute on these 2-core machines.
test: $(STAMP)
	$(PYTEST) -q -n 2

test-slow: $(STAMP) browser
	$(PYTEST) -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check exportkit tests benchmarks examples
	$(VENV)/bin/ruff format --check exportkit tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test test-slow

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
