# The two commands: `make demo` and `make test`. Each bootstraps .venv on a fresh machine (idempotent: the
# install step re-runs only when pyproject.toml changes). `make test-fast` is the edit-test loop: every test not marked
# `slow` (subprocess, multi-process, browser and long training tests), under 3 minutes on 2 cores.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
export SDL_VIDEODRIVER ?= offscreen
export HF_HUB_OFFLINE ?= 1
export MPLBACKEND ?= Agg

.PHONY: install browser test test-fast demo quickstart clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

browser:
	bash tools/install_browser.sh

test: install browser
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - failing"; exit 1; fi; exit $$rc

test-fast: install
	@$(PY) -m pytest -m "not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-fast: pytest collected no tests - failing"; exit 1; fi; exit $$rc

demo: install
	$(PY) -m worldgen.cli demo --checkpoints checkpoints


quickstart: install
	$(PY) tools/quickstart.py

clean-venv:
	rm -rf $(VENV)
