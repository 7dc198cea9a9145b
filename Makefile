# Two commands do all set-up on a fresh machine:
#   make grade   grade ./exercises with the hidden tests and print the score
#   make test    run the kit's own tests (reference 100%, stubs 0, mutants caught, grader behaviour)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch CPU build: a wheel on local disk if there is one, else PyTorch's CPU index (a plain
# `pip install torch` may pull a multi-GB CUDA build).
TORCH_SPEC  ?= torch>=2.2
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup grade test bench clean browser

$(BIN)/dlkata: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if $(BIN)/python -c "import torch" 2>/dev/null; then echo "torch already installed"; \
	elif ls /opt/wheels/torch-*+cpu-*.whl >/dev/null 2>&1; then $(BIN)/pip install --quiet "torch==2.13.0"; \
	else $(BIN)/pip install --quiet "$(TORCH_SPEC)" --index-url $(TORCH_INDEX); fi
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

setup: $(BIN)/dlkata

grade: setup
	$(BIN)/dlkata grade exercises

# headless Chromium renders the HTML report in tests/test_learner.py (Debian's package, as root)
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is not installed: the HTML report's browser test is skipped outside CI"

test: setup browser
	$(BIN)/python -m pytest tests -n 2

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .dlkata *.egg-info
