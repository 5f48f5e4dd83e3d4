# The two commands the README promises: `make demo` and `make test`. Each installs what it needs
# into .venv first, so both work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo demo-transformers test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	@$(BIN)/python -c "import llama_cpp" 2>/dev/null || echo "Installing into $(VENV): \
	llama-cpp-python compiles from source now, once (about 6 minutes on 2 quiet cores; pip \
	caches the wheel). In a hurry? Ctrl-C, then: make demo-transformers (no compiler)."
	$(BIN)/pip install --quiet -c constraints.txt -e ".[all,test]"

demo: install
	$(BIN)/distilabel-llm demo

# The demo without llama.cpp: nothing to compile, two transformers processes.
demo-transformers: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e ".[transformers,kit]"
	$(BIN)/distilabel-llm demo --backends transformers

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m benchmarks --quick
