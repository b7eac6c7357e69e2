# `make run`: set up and run the main job.  `make test`: set up and run the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch lies on local disk; install it before anything can pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/memecat run --task semeval-t6 --out runs/main

test: $(STAMP)
	bash scripts/install-browser.sh
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/memecat bench

clean:
	rm -rf $(VENV) runs .memecat-cache
