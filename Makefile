# make tour | make test | make lab | make bench | make notebooks
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

.PHONY: install tour test notebooks lab bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	DISABLE_CUDA=1 $(PY) -m pip install --quiet -e ".[dev,merging,quant]"
	touch $@

## Build the offline zoo if missing, then execute every notebook headless into reports/NAME.html.
tour: $(STAMP)
	$(PY) -m moelab zoo
	$(PY) scripts/tour.py $(NOTEBOOKS)

## Lint and format check (ruff), build or verify the zoo (acceptance table, build time), unit
## tests, the docstring examples, the notebooks under nbval.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m moelab zoo
	$(PY) -m pytest tests
	$(PY) -m pytest --doctest-modules moelab srlab labcore
	$(PY) -m pytest --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg notebooks

## Re-execute the committed notebooks in place. They run on a zoo built with two training
## threads, so that `make test` (CI builds with one) checks them against another build.
NOTEBOOK_TRAIN_THREADS := 2
notebooks: $(STAMP)
	MOELAB_TRAIN_THREADS=$(NOTEBOOK_TRAIN_THREADS) MOELAB_TRAIN_JOBS=1 $(PY) -m moelab zoo
	cd notebooks && env -u MPLBACKEND -u PLOTLY_RENDERER MOELAB_TRAIN_THREADS=$(NOTEBOOK_TRAIN_THREADS) \
		../$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=1800 --ClearMetadataPreprocessor.enabled=True \
		--ClearMetadataPreprocessor.clear_cell_metadata=False \
		--ClearMetadataPreprocessor.preserve_nb_metadata_mask=kernelspec \
		--ClearMetadataPreprocessor.preserve_nb_metadata_mask=language_info $(notdir $(NOTEBOOKS))

## JupyterLab on the notebooks folder.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

## Benchmarks: each prints ratios against a peer measured in the same run.
bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf reports .pytest_cache
