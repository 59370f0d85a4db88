#!/usr/bin/env bash
# One script for a GPU session: a CUDA smoke run of every loop with host-synchronisation counts, the full-size
# benchmark without and with torch.compile (and at batch 96), the fusion path alone (eager, static compiled graphs and
# those as CUDA graphs, batch 96 and 256, profiled), the same fusion path with the view bank in host memory against
# one on the card (hostbank), the whole study at a tiny protocol (papermill from wheelhouse/), and trials per hour
# with 1, 2 and 4 trials packed on the card. Phases run in the order given. On one H100 (2026-11-27, torch 2.11) they
# took: smoke 34 s, fusion 124 s (before it compiled each path afresh per batch size and profiled it: expect
# 5-7 minutes now), study 125 s, compile 229 s, full 132 s (hostbank and packing not yet run: expect 2-3 minutes
# each); a machine's start adds 1-2 minutes. Worst cases are the timeouts below (smoke 100, fusion 430, hostbank 2 x
# 150, study 240, compile 420, full 220, full96 260, packing 300 s, each plus 10 s to kill); one device call is at
# most 600 s, so `smoke fusion` (550 s at worst, plus about 20 s of checks) fits one call; give each call an outer
# `timeout` all the same. For a 15-minute device budget: `smoke fusion` in one call, then `hostbank` (never run on a
# GPU; the host bank first) while the machine is warm, and `full96` (the paper protocol's batch, never run) if time is
# left; `study` (carrying `wheelhouse`, made by `make wheelhouse`) and `compile` ran on 2026-11-27. The fusion record
# is rewritten after every run, and batch 256 (the target's) runs before 96, so a timeout keeps the runs that
# finished, the target's first. Each phase compiles into an empty inductor cache of its own, so a rerun's compile
# times are not a warm cache's.
#
#   OUT=/some/dir scripts/gpu_check.sh [all | PHASE...]   # PHASE: smoke full full96 compile fusion hostbank study
#                                                         # packing
#                                                         # (OUT default ./gpu_out)
#   GPU_CHECK_ON_CPU=1 OUT=/tmp/rehearsal scripts/gpu_check.sh smoke fusion hostbank   # `make gpu-rehearsal`
#
# GPU_CHECK_ON_CPU=1 rehearses the phases on this machine's CPU at a tiny size (posters 32 x 32, VGG19 / 8, C = 16,
# a few hundred rows): the same commands, flags, code paths and records, so a broken phase costs no device time. Its
# figures mean nothing. The script exits non-zero when a phase failed (each phase still runs).
#
# Needs torch (CUDA), torchvision, numpy, h5py, matplotlib, seaborn and scipy (the study's statistics). The package
# runs from this checkout through PYTHONPATH (no `pip install` needed; `pip install -e . --no-deps` also works).
# Without tqdm the package prints plain progress lines instead of bars.
# Results: $OUT/smoke/ (small size on CUDA: every loop runs, syncs per batch counted),
# $OUT/reports/ (bench_cuda.json, bench_cuda_compile.json, fusion_cuda.json, and benchmarks.md / benchmarks.csv
# regenerated with the CPU record from reports/ beside them), $OUT/hostbank/{device,host}/ (fusion_cuda.json and
# fusion_cuda_hostbank.json: batch 256, eager, bank of 8 on the card and in host memory), $OUT/study/, $OUT/*.log.
# Copy $OUT/reports/{bench,fusion}_cuda*.json and $OUT/hostbank/*/fusion_*.json into reports/ (each fusion record
# under a dated name, e.g.
# fusion_cuda_2026-12-01.json: reports/fusion_cuda.json is the 2026-11-27 record the README quotes) and run
#   python -c "from ssmnas.bench import write_reports; write_reports('reports')"
# to add the GPU sections to reports/benchmarks.md.
set -uo pipefail
for PHASE in "${@:-all}"; do   # refuse a misspelt phase before anything runs
  case "$PHASE" in all|smoke|full|full96|compile|fusion|hostbank|study|packing) ;;
    *) echo "gpu_check.sh: error: unknown phase '$PHASE' (all, smoke, full, full96, compile, fusion, hostbank," \
         "study, packing)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"
if [ "${GPU_CHECK_ON_CPU:-0}" = 1 ]; then    # the rehearsal: each command as on the GPU, then a tiny size on the CPU
  DEV=cpu; TINY=(--n_rows 300 --height 32 --width 32 --image_width_div 8 --C 16)
  TWIN_SIZE='n_samples=240, height=32, width=32'; STUDY_TINY=(-p image_width_div 8 -p C 16)
  RUN_TINY=(--image_width_div 8 --C 16)
  SLOWER=4                                   # 2 CPU cores (torch.compile's C++ builds included) against one H100
else
  DEV=cuda; TINY=(); TWIN_SIZE=''; STUDY_TINY=(); RUN_TINY=(); SLOWER=1
fi
SCRATCH="${SCRATCH:-/tmp/ssmnas_gpu_check}"   # twins and trial folders (checkpoints: too big to come back in $OUT)
FAILED=()
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if [ "$DEV" = cuda ] && ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  echo "gpu_check.sh: error: torch sees no CUDA device (GPU_CHECK_ON_CPU=1 rehearses the phases on the CPU)" >&2; exit 1
fi                                          # (before anything is written)
mkdir -p "$OUT/reports" "$OUT/smoke" "$SCRATCH"

if ! "$PY" -c 'import tqdm.auto' 2>/dev/null; then     # the package's bars fall back to plain lines (core.PlainBar)
  echo "note: tqdm is not installed; progress bars are plain lines" | tee "$OUT/notes.txt"
fi

if [ "$DEV" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia_smi.txt"; fi
"$PY" -c 'import torch, torchvision, numpy, h5py, matplotlib, seaborn, scipy, ssmnas; print("torch", torch.__version__, "torchvision", torchvision.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")' 2>&1 | tee "$OUT/versions.txt" || exit 1
cp reports/bench_cpu*.json reports/fusion_cpu*.json "$OUT/reports/" 2>/dev/null || true

bench() {  # bench NAME TIMEOUT_S ARGS...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name: ssmnas_bench $*${TINY[*]+ ${TINY[*]}}"
  TORCHINDUCTOR_CACHE_DIR="$(mktemp -d "$SCRATCH/inductor_$name.XXXX")" timeout -k 10 "$((limit * SLOWER))" "$PY" -c 'import sys; from ssmnas.bench import ssmnas_bench; ssmnas_bench(sys.argv[1:])' \
    "$@" ${TINY[@]+"${TINY[@]}"} > "$OUT/$name.log" 2>&1
  ended "$name" $? "$t0"; tail -n 40 "$OUT/$name.log"
}

ended() {  # ended NAME EXIT_STATUS T0: the phase's one summary line; a failure is remembered for the exit status
  echo "== $1: exit $2 after $((SECONDS - $3)) s"
  if [ "$2" != 0 ]; then FAILED+=("$1"); fi
}

for PHASE in "${@:-all}"; do
# 1. smoke: every loop on CUDA at the small size (search, view bank, tap cache, steps 2-3) + syncs per batch (~1 min)
case "$PHASE" in all|smoke) bench smoke 100 --device "$DEV" --n_rows 1024 --repeats 1 --view_bank 2 --out "$OUT/smoke" ;; esac
# 2. the full size, eager: floor, augmentation, contrastive live + view bank of 8, supervised, steps 2-3 (~2.5 min)
case "$PHASE" in all|full) bench full 220 --device "$DEV" --full --out "$OUT/reports" ;; esac
# 2b. the same at the paper protocol's batch of 96 (bench_cuda_full_b96.json): the per-row costs Exp. 1 at the paper's
#     protocol extrapolates from, and the record a full-size study sets its trial times beside (~3 min)
case "$PHASE" in all|full96) bench full96 260 --device "$DEV" --full --batch_size 96 --out "$OUT/reports" ;; esac
# 3. the full size with torch.compile (backbone, and the fusion network in every loop): both floors; the view bank is
#    skipped to save time (it is in run 2 and in 3b) (~5-7 min with the fusion network's compilations)
case "$PHASE" in all|compile) bench full_compile 420 --device "$DEV" --full --compile --view_bank 0 --out "$OUT/reports" ;; esac
# 3b. the fusion path alone (view-bank epochs at batch 96 and 256 from a bank of 8 like the reference figure: eager,
#     compiled with static shapes, and those as CUDA graphs; training's dynamic compiled path was measured on
#     2026-11-27; issue 10's 4x target) and 20 single steps of each profiled (kernels, device busy time, host
#     operators): writes fusion_cuda.json after every run
#     (3 timed epochs: CUDA graphs capture a shape on its second call, so epoch 2 still captures the partial batches)
case "$PHASE" in all|fusion) bench fusion 430 --device "$DEV" --full --fusion --view_bank 8 --repeats 3 --paths eager \
  compiled_static compiled_graphs --profile 20 --out "$OUT/reports" ;; esac
# 3c. the bank of 8 in pinned host memory (view_bank_on host: each batch's taps gathered on the host and copied)
#     against the same bank on the card, eager at batch 256, one after the other in one call, each profiled (the
#     host bank first: it has never run on a GPU, while the card's repeats the fusion phase's eager batch 256)
case "$PHASE" in all|hostbank)
  for ON in host device; do
    mkdir -p "$OUT/hostbank/$ON"
    bench "hostbank_$ON" 150 --device "$DEV" --full --fusion --view_bank 8 --view_bank_on "$ON" --batch_size 256 \
      --repeats 2 --paths eager --profile 10 --out "$OUT/hostbank/$ON"
  done ;;
esac
# 4. the whole study on CUDA at a tiny protocol (papermill notebooks end to end; ~2 min): papermill from wheelhouse/
#    (`make wheelhouse` here, then carry `wheelhouse` to the machine) when it is not installed
case "$PHASE" in all|study)
  if ! "$PY" -c 'import papermill, ipykernel' 2>/dev/null && [ -d wheelhouse ]; then
    "$PY" -m pip install -q --no-index --find-links wheelhouse papermill ipykernel > "$OUT/wheelhouse.log" 2>&1
    "$PY" -m ipykernel install --user --name python3 >> "$OUT/wheelhouse.log" 2>&1
  fi
  "$PY" -c "import sys; from ssmnas.synth import make_synthetic_mmimdb as m; m(sys.argv[1], ${TWIN_SIZE:-n_samples=600, height=128, width=80})" \
    "$SCRATCH/twin.hdf5" || FAILED+=(study_twin)
  t0=$SECONDS; rm -rf "$SCRATCH/study_runs"   # a rerun times the trials afresh instead of reading them back
  timeout -k 10 "$((240 * SLOWER))" "$PY" scripts/study.py --data "$SCRATCH/twin.hdf5" --device "$DEV" --runs "$SCRATCH/study_runs" --reports "$OUT/study" \
    -p r_values '[0.1, 1.0]' -p trials 2 -p search_epochs 2 -p rep_epochs 2 -p clf_epochs 5 \
    -p extra_mfas '{"iterations": 1, "K": 4, "epochs": 2}' ${STUDY_TINY[@]+"${STUDY_TINY[@]}"} > "$OUT/study.log" 2>&1
  ended study $? "$t0"; tail -n 5 "$OUT/study.log" ;;
esac
# 5. trials per hour with 1, 2 and 4 trials packed on the card (processes; the GPU machine has no Ray) (~3 min)
case "$PHASE" in all|packing)
  "$PY" -c "import sys; from ssmnas.synth import make_synthetic_mmimdb as m; m(sys.argv[1], ${TWIN_SIZE:-n_samples=3000, height=256, width=160})" \
    "$SCRATCH/pack.hdf5" || FAILED+=(packing_twin)
  t0=$SECONDS; rm -rf "$SCRATCH/packing_runs"
  timeout -k 10 "$((300 * SLOWER))" "$PY" scripts/sweep_packing.py --data "$SCRATCH/pack.hdf5" --out "$SCRATCH/packing_runs" --protocol paper \
    --search_epochs 2 --rep_epochs 2 --clf_epochs 2 --device "$DEV" --engine processes \
    --json "$OUT/reports/packing_$DEV.json" ${RUN_TINY[@]+"${RUN_TINY[@]}"} > "$OUT/packing.log" 2>&1
  ended packing $? "$t0"; tail -n 8 "$OUT/packing.log" ;;
esac
done
ls -la "$OUT/reports" "$OUT/smoke"
if [ ${#FAILED[@]} -gt 0 ]; then echo "gpu_check.sh: failed: ${FAILED[*]}" >&2; exit 1; fi
echo "gpu_check.sh: every phase asked for ended with exit 0"
