# One-liners only; longer logic lives in tools/*.py (STYLE.md habits).
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PACKAGES := -p omniroute_core -p omniroute_devservers -p omniroute_edge -p omniroute_translator \
            -p omniroute_executor -p omniroute_usage -p omniroute_dashboard

.PHONY: install run test check proto goldens bench fmt

$(UV):
	python3 -m pip install --user --quiet uv

install: $(UV)
	$(UV) sync --frozen

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
	$(UV) run --frozen python bench/run.py $(ARGS)

goldens: install
	$(UV) run --frozen python -m omniroute_translator.goldens

fmt: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .
