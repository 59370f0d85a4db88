# Two commands: `make study` regenerates reports/ from the synthetic twin; `make test` checks everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   := data/synthetic_mmimdb.hdf5
STAMP  := $(VENV)/.installed-stamp

.PHONY: study test install data export-check clean

install: $(STAMP)
$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

data: $(DATA)
$(DATA): | $(STAMP)
	$(BIN)/ssmnas_synth $(DATA)

# The experiment notebooks, in this order (table3 reuses the sweep's BM-NAS r = 1.0 trials, architectures
# reads the sweep's trials), each run by papermill; reports go to reports/, executed copies to
# reports/executed/ (a killed run resumes: finished trials are skipped).
EXPERIMENTS := nbs/experiments/r_sweep.ipynb nbs/experiments/table3.ipynb nbs/experiments/architectures.ipynb
study: $(STAMP) $(DATA)
	mkdir -p reports/executed
	@for nb in $(EXPERIMENTS); do \
	  echo "== $$nb"; \
	  $(BIN)/papermill --cwd . -k python3 $$nb reports/executed/$$(basename $$nb) -p data_path $(DATA) || exit 1; \
	done

# nbdev_export must leave ssmnas/ as committed: the notebooks are the source.
export-check: $(STAMP)
	$(BIN)/nbdev_export
	@if [ -n "$$(git status --porcelain -- ssmnas)" ]; then \
	  echo "nbdev_export changed ssmnas/: the package and the notebooks disagree"; git status --porcelain -- ssmnas; exit 1; fi

test: $(STAMP) $(DATA) export-check
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf runs reports/executed
