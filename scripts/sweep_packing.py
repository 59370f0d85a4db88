"""Trials per hour on one device with 1, 2 and 4 trials packed on it, and the Exp. 1 wall time this gives on 8.

On a GPU, packing K runs K trials at once on the one card (Ray: gpus_per_trial = 1/K); on the CPU, K trials share the
machine's cores (cpus_per_trial = cores/K). Each packing runs the same small sweep into a fresh folder (nothing is read
back), and its trials per hour are trials / wall time; each trial's start (a Ray worker, CUDA) is counted, as in a
real sweep, but one untimed trial runs first (the file read from disk once, the data check remembered, Ray started).
Exp. 1 is 140 trials (2 methods x 7 r values x 10 seeds); on 8 such devices it takes
140 / (8 x trials per hour) hours at the settings measured: measure at the settings you will run.

With Ray installed (`pip install -e '.[ray]'`) the trials are Ray tasks, as `ssmnas_sweep --executor ray` runs them;
without it (`--engine processes`), `run_sweep`'s local workers: K worker processes share the device, which is
what Ray does too (K = 1: one trial after another in this process, as `ssmnas_sweep --workers 1` runs them).

    python scripts/sweep_packing.py --data data/synthetic_mmimdb.hdf5 --out runs/sweep_packing --protocol cpu \\
        --search_epochs 2 --rep_epochs 1 --clf_epochs 4          # then look at runs/sweep_packing/<time>/packing.json

Trial settings and the sweep (--protocol, --search_epochs, ..., --methods, --r, --trials / --seeds) are ssmnas_sweep's;
the default sweep is both methods at r in {0.1, 1.0} with 2 seeds: 8 trials per packing.
"""
import json, os, sys, time
from dataclasses import asdict
from pathlib import Path

import torch

from ssmnas.core import SsmnasError, cli_errors, device_name, pick_device, run_info, write_json
from ssmnas.data import open_dataset
from ssmnas.sweep import _sweep_parser, run_sweep, sweep_jobs
from ssmnas.trial import configs_from_args, run_trial

EXP1_TRIALS = 140          # 2 methods x 7 r values x 10 seeds (the paper protocol's sweep)

def _measured_trial(data, *args, **kwargs):
    "run_trial, with the trial's peak GPU memory added to what it returns (not to its metrics.json)."
    if torch.cuda.is_available(): torch.cuda.reset_peak_memory_stats()
    m = run_trial(data, *args, **kwargs)
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    return m | {'peak_gpu_bytes': peak}

def _parser():
    p, *options = _sweep_parser()
    p.prog, p.description = 'sweep_packing.py', __doc__.splitlines()[0]
    p.add_argument('--packings', nargs='+', type=int, default=[1, 2, 4], help='trials at once on the one device')
    p.add_argument('--engine', choices=('auto', 'ray', 'processes'), default='auto',
                   help="auto: Ray when installed, else worker processes (ssmnas_sweep's --workers)")
    p.add_argument('--json', help='where to write the figures (default: packing.json in the run folder)')
    p.set_defaults(r=[0.1, 1.0], trials=2)
    return p, options

@cli_errors
def main(argv=None):
    parser, options = _parser()
    a = parser.parse_args(argv)
    configs = configs_from_args(a, *options)                # (search, train[, MFAS]) settings, as ssmnas_sweep's
    scfg, tcfg = configs[:2]
    trial_kw = {'compile': a.compile} | ({'mfas_cfg': configs[2]} if len(configs) > 2 else {})
    seeds = a.seeds if a.seeds else list(range(a.trials))
    device = pick_device(a.device)
    if any(k < 1 for k in a.packings): raise SsmnasError(f'packings must be at least 1, got {a.packings}')
    engine = a.engine
    if engine == 'auto':
        try: import ray  # noqa: F401
        except ImportError: engine = 'processes'
        else: engine = 'ray'
    root = Path(a.out)/time.strftime('%Y%m%d-%H%M%S')
    data = open_dataset(a.data, check=True)
    sweep_jobs(a.methods, a.r, seeds, root)                 # bad lists: one line, now
    n_cpu = os.cpu_count() or 1
    if engine == 'ray':
        import ray
        ray.init(address=a.address, num_cpus=None if a.address else n_cpu,
                 num_gpus=None if a.address else int(device.type == 'cuda'))   # one device: measure one GPU
    rows = []
    try:
        # one trial first, not timed: the data read once from disk, the data check remembered, Ray's workers started
        if engine == 'ray':
            run_sweep(str(data.path), a.methods[:1], a.r[:1], seeds[:1], root/'warmup', scfg, tcfg, device=device.type,
                      executor='ray', address=a.address, trial_fn=_measured_trial, progress=False, trial_kw=trial_kw)
        else: run_sweep(str(data.path), a.methods[:1], a.r[:1], seeds[:1], root/'warmup', scfg, tcfg,
                        device=device.type, trial_fn=_measured_trial, progress=False, trial_kw=trial_kw)
        for k in a.packings:
            folder = root/f'pack{k}'
            if device.type == 'cuda': per = {'gpus_per_trial': 1 / k, 'cpus_per_trial': a.cpus_per_trial or 1.0}
            else: per = {'gpus_per_trial': 1.0, 'cpus_per_trial': n_cpu / k}         # (no GPU asked for on the CPU)
            threads = (max(1, int(per['cpus_per_trial'])) if engine == 'ray'
                       else max(1, torch.get_num_threads() // k))              # what run_sweep's workers get
            t0 = time.perf_counter()
            if engine == 'ray':
                res = run_sweep(str(data.path), a.methods, a.r, seeds, folder, scfg, tcfg, device=device.type,
                                executor='ray', address=a.address, trial_fn=_measured_trial, progress=False,
                                trial_kw=trial_kw, **per)
            else: res = run_sweep(str(data.path), a.methods, a.r, seeds, folder, scfg, tcfg, device=device.type,
                                  trial_fn=_measured_trial, progress=False, trial_kw=trial_kw, workers=k)
            wall = time.perf_counter() - t0
            tph = len(res) * 3600 / wall
            shown = per | ({} if device.type == 'cuda' else {'gpus_per_trial': None})
            rows.append({'packing': k, **shown, 'torch_threads_per_trial': threads, 'trials': len(res), 'wall_s': wall,
                         'trials_per_hour': tph, 'exp1_hours_on_8_devices': EXP1_TRIALS / (8 * tph),
                         'peak_gpu_gib_per_trial': max(m.get('peak_gpu_bytes', 0) for m in res) / 2**30})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if engine == 'ray': ray.shutdown()
    base = rows[0]['trials_per_hour']
    for row in rows: row['speedup_vs_first'] = row['trials_per_hour'] / base
    best = max(rows, key=lambda row: row['trials_per_hour'])
    out = {'what': 'trials per hour on one device with K trials packed on it', 'device': str(device),
           'device_name': device_name(device), 'engine': engine, 'cpu_cores': n_cpu, 'run_folder': str(root),
           'sweep': {'methods': a.methods, 'r': a.r, 'seeds': seeds, 'protocol': a.protocol},
           'search_config': asdict(scfg), 'train_config': asdict(tcfg), 'packings': rows,
           'best_packing': best['packing'], 'exp1_trials': EXP1_TRIALS,
           'exp1_hours_on_8_devices_at_best_packing': best['exp1_hours_on_8_devices'], 'run_info': run_info(device)}
    path = Path(a.json) if a.json else root/'packing.json'
    write_json(path, out)
    print(f"best: {best['packing']} trial(s) at once, {best['trials_per_hour']:.1f} trials/hour; Exp. 1 "
          f"({EXP1_TRIALS} trials) on 8 such devices: {best['exp1_hours_on_8_devices']:.2f} h at these settings; "
          f"figures in {path}")

if __name__ == '__main__':
    sys.argv[0] = 'sweep_packing.py'
    main()
