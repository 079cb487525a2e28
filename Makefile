# The two commands of the README: "make run" and "make test"; "make docs"
# builds the documentation, failing on any warning or broken reference.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test docs bench clean

$(BIN)/.installed: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/gwcelery local start --foreground

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs: $(BIN)/.installed
	$(BIN)/python -m sphinx -n -W --keep-going -b html doc doc/_build/html

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/dispatch.py

clean:
	rm -rf $(VENV) doc/_build *.egg-info
