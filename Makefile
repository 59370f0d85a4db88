# Two commands: `make study` regenerates reports/ from the synthetic twin; `make test` checks everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   := data/synthetic_mmimdb.hdf5
STAMP  := $(VENV)/.installed-stamp

.PHONY: study test test-slow lint readme install data export-check clean viewbank-effect viewbank-effect-10 wheelhouse \
  gpu-rehearsal

install: $(STAMP)
$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

data: $(DATA)
$(DATA): | $(STAMP)
	$(BIN)/ssmnas_synth $(DATA)

# The whole study (scripts/study.py): the experiment notebooks r_sweep, table3 (it reuses the sweep's r = 1.0 trials of
# the methods without step 2) and architectures (it reads the sweep's trials), each run by papermill; reports go to
# reports/, executed copies to reports/executed/, wall times to reports/study_run.json (a killed run resumes:
# finished trials are skipped). On a GPU:
#   make study STUDY_WORKERS=1 STUDY_ARGS="--protocol paper --device cuda --runs runs/paper ..."
# Exp. 1 runs two trials at a time (one torch thread each: 1.47x one two-thread trial after another on 2 cores).
STUDY_ARGS ?=
STUDY_WORKERS ?= 2
study: $(STAMP) $(DATA)
	$(BIN)/python scripts/study.py --data $(DATA) --workers $(STUDY_WORKERS) $(STUDY_ARGS)

# papermill, ipykernel and what they need, as wheels for an offline machine (the GPU machine: Python 3.12, x86_64);
# there: pip install --no-index --find-links wheelhouse papermill ipykernel && python -m ipykernel install --user
WHEEL_PY ?= 3.12
wheelhouse: $(STAMP)
	$(BIN)/pip download -q -d wheelhouse --only-binary=:all: --python-version $(WHEEL_PY) --platform manylinux2014_x86_64 \
	  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform linux_x86_64 --platform any papermill ipykernel
	@echo "wheelhouse/: $$(ls wheelhouse | wc -l) wheels, $$(du -sh wheelhouse | cut -f1)"

# Exp. 1 again with a view bank of 8 views, then the paired comparison with the live sweep of
# `make study` (reports/viewbank_effect.md); as many workers as the study, so both arms' trials get the same torch
# threads (the same arithmetic: BM-NAS's trials, which draw no views, must come out equal).
viewbank-effect: $(STAMP) $(DATA)
	mkdir -p reports/executed
	$(BIN)/papermill --cwd . -k python3 nbs/experiments/r_sweep.ipynb reports/executed/r_sweep_bank8.ipynb -p data_path $(DATA) \
	  -p runs_dir runs/r_sweep_bank8 -p reports_dir reports/viewbank_k8 -p workers $(STUDY_WORKERS) \
	  -y "{extra_search: {view_bank: 8}, methods: [ssl, bmnas]}"
	$(BIN)/papermill --cwd . -k python3 nbs/experiments/viewbank_effect.ipynb reports/executed/viewbank_effect.ipynb

# The same comparison with 10 paired seeds per r: a live and a banked sweep of ssl and bmnas (the live one reuses the
# study's seeds 0-2 from runs/r_sweep; the banked one runs all 10 seeds afresh on this code), into
# reports/viewbank_10seeds/ (16.2 minutes on 2 cores, 2026-11-27, 520a3b8)
VB10 = reports/viewbank_10seeds
viewbank-effect-10: $(STAMP) $(DATA)
	mkdir -p $(VB10)/executed
	$(BIN)/papermill --cwd . -k python3 nbs/experiments/r_sweep.ipynb $(VB10)/executed/r_sweep_live.ipynb -p data_path $(DATA) \
	  -p runs_dir runs/r_sweep -p reports_dir $(VB10)/live -p workers $(STUDY_WORKERS) -y "{trials: 10, methods: [ssl, bmnas]}"
	$(BIN)/papermill --cwd . -k python3 nbs/experiments/r_sweep.ipynb $(VB10)/executed/r_sweep_bank8.ipynb -p data_path $(DATA) \
	  -p runs_dir runs/r_sweep_bank8_10 -p reports_dir $(VB10)/bank8 -p workers $(STUDY_WORKERS) \
	  -y "{trials: 10, extra_search: {view_bank: 8}, methods: [ssl, bmnas]}"
	$(BIN)/papermill --cwd . -k python3 nbs/experiments/viewbank_effect.ipynb $(VB10)/executed/viewbank_effect.ipynb \
	  -p live_csv $(VB10)/live/r_sweep.csv -p bank_csv $(VB10)/bank8/r_sweep.csv -p reports_dir $(VB10)
	$(BIN)/python scripts/trial_timings.py live=runs/r_sweep bank8=runs/r_sweep_bank8_10 --methods ssl bmnas \
	  --out $(VB10)/trial_timings.csv

# scripts/gpu_check.sh's phases on this CPU at a tiny size (GPU_CHECK_ON_CPU=1): the commands a GPU session runs, end
# to end, before device time is spent on them (figures meaningless; about 15 minutes on 2 cores, most of it
# torch.compile's C++ builds; GPU_PHASES=smoke hostbank: 2 minutes)
GPU_PHASES ?= all
gpu-rehearsal: $(STAMP)
	GPU_CHECK_ON_CPU=1 OUT=/tmp/ssmnas_gpu_rehearsal PYTHON=$(BIN)/python bash scripts/gpu_check.sh $(GPU_PHASES)

# nbdev_export must leave ssmnas/ as committed: the notebooks are the source.
export-check: $(STAMP)
	$(BIN)/nbdev_export
	@if [ -n "$$(git status --porcelain -- ssmnas)" ]; then \
	  echo "nbdev_export changed ssmnas/: the package and the notebooks disagree"; git status --porcelain -- ssmnas; exit 1; fi

# README.md is rendered from nbs/index.ipynb (its example cell executed, outputs kept)
readme: $(STAMP) $(DATA)
	$(BIN)/python scripts/run_index.py
	$(BIN)/nbdev_clean --fname nbs/index.ipynb
	$(BIN)/python scripts/readme.py

# pyflakes' rules and lines of at most 120 characters (pyproject.toml) on the package (exported from the notebooks),
# the tests and the scripts; line_limit.py is ruff's E501 less nbdev's generated `__all__` lines
lint: $(STAMP)
	$(BIN)/ruff check --select F --exclude ssmnas/_modidx.py ssmnas tests scripts
	$(BIN)/python scripts/line_limit.py ssmnas tests scripts
	$(BIN)/python scripts/readme.py --check

# two notebooks at a time, one torch thread each: two 2-thread workers on 2 cores run 5x slower (measured 90 s vs 19 s)
test: $(STAMP) $(DATA) export-check lint
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q tests -m 'not slow'

# the heavier checks: notebook cells marked `#| slow` and pytest tests marked slow
test-slow: $(STAMP) $(DATA)
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --flags slow
	$(BIN)/python -m pytest -q tests -m slow

clean:
	rm -rf runs reports/executed
