# One command each: `make demo` installs and runs the main job, `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= test,demo,keops,speech

.PHONY: install demo test test-all bench doctor clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml setup.py $(wildcard csrc/*)
	$(BIN)/python -m pip install -q "setuptools>=68" wheel "torch>=2.4"
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/ssm train

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

doctor: install
	$(BIN)/ssm doctor

clean:
	rm -rf build *.egg-info ssm/_C*.so
