# make tour | make test | make lab | make bench
# Every target creates .venv on first use and reinstalls only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU wheel of torch; an unpinned torch would pull several GB of CUDA wheels.
# Elsewhere override it, e.g. `make test TORCH_SPEC="torch>=2.5"`.
TORCH_SPEC ?= torch==2.13.0
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1

.PHONY: install tour test lab bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,merging]"
	touch $@

## Build the offline zoo if missing, then execute every notebook headless into reports/NAME.html.
tour: $(STAMP)
	$(PY) -m moelab zoo
	$(PY) scripts/tour.py $(NOTEBOOKS)

## Unit tests, then the executed notebooks under nbval.
test: $(STAMP)
	$(PY) -m pytest tests
	$(PY) -m pytest --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg notebooks

## JupyterLab on the notebooks folder.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

## Benchmarks: each prints ratios against a peer measured in the same run.
bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf reports .pytest_cache
