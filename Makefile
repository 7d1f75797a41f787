# The front door. Every target is a line or two calling a real tool.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lock venv clean

venv: $(STAMP)
$(STAMP): requirements/dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --no-deps -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e . && touch $@

test: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python -m devtools.demo

lock:
	requirements/lock.sh

clean:
	rm -rf $(VENV) demo build
