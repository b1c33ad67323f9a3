# One-liners only; longer logic lives in tools/*.py (STYLE.md habits).
SHELL := /bin/bash
UV_HOME := $(HOME)/.local/share/omniroute/uv
UV ?= $(shell command -v uv 2>/dev/null || echo $(UV_HOME)/bin/uv)
PACKAGES := -p omniroute_core -p omniroute_devservers -p omniroute_edge -p omniroute_translator \
            -p omniroute_executor -p omniroute_usage -p omniroute_dashboard

.PHONY: install run test check proto goldens bench fmt

# uv from PyPI into a private venv (works where the system Python refuses pip installs, PEP 668); without the
# venv module, a user install linked into the same place
$(UV):
	python3 -m venv $(UV_HOME) && $(UV_HOME)/bin/pip install --quiet uv || \
	  (python3 -m pip install --quiet --user --break-system-packages uv && \
	   mkdir -p $(UV_HOME)/bin && ln -sf $(HOME)/.local/bin/uv $(UV))

# the hot-path modules compiled with mypyc (skipped when up to date; without a C compiler they run as Python)
install: $(UV)
	$(UV) sync --frozen
	$(UV) run --frozen python tools/build_native.py

run: install
	$(UV) run --frozen python tools/run.py

test: install
	$(UV) run --frozen python tools/test.py $(ARGS)

check: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy $(PACKAGES)
	for d in libs/*/tests services/*/tests tests; do $(UV) run --frozen mypy $$d || exit 1; done
	$(UV) run --frozen lint-imports
	$(UV) run --frozen python tools/gen_proto.py --check
	$(UV) run --frozen python tools/check_module_size.py

proto: install
	$(UV) run --frozen python tools/gen_proto.py

bench: install
	UV=$(UV) $(UV) run --frozen python bench/run.py $(ARGS)

goldens: install
	$(UV) run --frozen python -m omniroute_translator.goldens

fmt: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .
