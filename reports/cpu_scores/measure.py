"""The scores from counts, clear_grads and the probe's kept fit (f01c764, 9d2b271) against the code before them
(186ac92), measured in one process (one torch thread) so the machine's drift falls on both alike:
(a) one call of each piece, interleaved timings (clear_grads on a supernet whose parameters hold no gradients);
(b) four trials of the cpu protocol (seed 0), each run with the previous code's pieces patched in and with the
    current ones, in the order before, now, now, before; their metrics compared;
(c) saving the `ssl` trial's search figure with and without `bbox_inches='tight'` (save_figure's trim), in the order
    trim, no trim, no trim, trim, three times. Run from the repository root:
    OMP_NUM_THREADS=1 .venv/bin/python reports/cpu_scores/measure.py > reports/cpu_scores/measure.txt"""
import contextlib, io, json, shutil, statistics, tempfile, time
from pathlib import Path
import numpy as np
import torch
from sklearn.metrics import f1_score
import ssmnas.baselines as baselines, ssmnas.loop as loop, ssmnas.mfas as mfas, ssmnas.train as train
import ssmnas.trial as trial
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from ssmnas.core import save_figure
from ssmnas.search import plot_search
from ssmnas.supernet import FusionSupernet
from ssmnas.trial import ssmnas_run

torch.set_num_threads(1)


def old_label_scores(y_true, probs, single_label=False, threshold=0.5):    # 186ac92's, multi-label and single-label
    if single_label:
        t, p = np.asarray(y_true).argmax(1), np.asarray(probs).argmax(1)
        return {'accuracy': float((t == p).mean())} | {f'{a}_f1': float(f1_score(t, p, average=a, zero_division=0))
                                                        for a in ('weighted', 'macro', 'micro')}
    y, pred = np.asarray(y_true).astype(int), (np.asarray(probs) >= threshold).astype(int)
    return {f'{a}_f1': float(f1_score(y, pred, average=a, zero_division=0))
            for a in ('weighted', 'micro', 'macro', 'samples')}


def old_linear_probe(x_fit, y_fit, x_hold=None, y_hold=None, single_label=False, threshold=0.5, seed=0):
    record = {'l2_grid': list(baselines.L2_GRID)}                       # 186ac92's: the chosen penalty fitted again
    if x_hold is None: l2, record['selection'] = 1e-3, 'fixed l2 = 1e-3 (no held-out rows)'
    else:
        scores = [old_label_scores(y_hold, baselines.LinearProbe(x_fit, y_fit, l, single_label, seed=seed)
                                   .predict(x_hold), single_label, threshold)['weighted_f1'] for l in baselines.L2_GRID]
        l2 = baselines.L2_GRID[int(np.argmax(scores))]
        record |= {'holdout_weighted_f1': scores, 'selection': f'best held-out weighted F1 over {len(x_hold)} rows'}
    return baselines.LinearProbe(x_fit, y_fit, l2, single_label, seed=seed), record | {'l2': l2}


NEW = {'label_scores': loop.label_scores, 'clear_grads': loop.clear_grads, 'linear_probe': trial.linear_probe}
OLD = {'label_scores': old_label_scores, 'clear_grads': lambda net: net.zero_grad(set_to_none=True),
       'linear_probe': old_linear_probe}
WAYS = {'before (186ac92)': OLD, 'now': NEW}


def use(way):
    for module in (loop, mfas, train, trial, baselines):
        for name, fn in way.items():
            if hasattr(module, name): setattr(module, name, fn)


def us_per_call(fn, n):
    fn()
    t = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - t) / n * 1e6


print(f'torch {torch.__version__}, one thread')
rng = np.random.default_rng(0)
y, probs = (rng.random((902, 23)) < .15).astype(np.float32), rng.random((902, 23)) * .8
net = FusionSupernet(['Image_1', 'Image_2', 'Text_1'], [(32, 16, 10), (64, 8, 5), (256,)], C=32, L=16)
calls = {'label_scores (902 x 23)': lambda way: (lambda: way['label_scores'](y, probs)),
         'clear_grads (a supernet)': lambda way: (lambda: way['clear_grads'](net))}
print('(a) equal scores:', OLD['label_scores'](y, probs) == NEW['label_scores'](y, probs))
for what, make in calls.items():
    times = {name: [] for name in WAYS}
    for _ in range(5):
        for name, way in WAYS.items(): times[name].append(us_per_call(make(way), 200))
    print(f'(a) {what}:', ', '.join(f'{name} median {statistics.median(v):.0f} us' for name, v in times.items()))

TRIALS = [('mfas', '1.0'), ('bmnas', '0.3'), ('ssl', '0.1'), ('probe_raw', '1.0')]
out, metrics = Path(tempfile.mkdtemp()), {}
for rnd in range(2):
    for method, r in TRIALS:
        for name, way in (WAYS.items() if rnd == 0 else reversed(WAYS.items())):
            use(way)
            folder = out/f'{method}_{r}_{rnd}_{name.split()[0]}'
            shutil.rmtree(folder, ignore_errors=True)
            t = time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                ssmnas_run(['--data', 'data/synthetic_mmimdb.hdf5', '--method', method, '--r', r, '--out', str(folder),
                            '--protocol', 'cpu'])
            wall = time.perf_counter() - t
            m = json.loads((folder/'metrics.json').read_text())
            metrics.setdefault((method, r), []).append({k: v for k, v in m.items() if k.endswith('_f1')})
            print(f'(b) round {rnd + 1}, {method} r = {r}, {name}: {wall:.2f} s, weighted F1 {m["weighted_f1"]!r}')
use(NEW)
for (method, r), ms in metrics.items():
    print(f'(b) {method} r = {r}: all four runs give the same F1s: {all(m == ms[0] for m in ms)}')

history = [json.loads(line) for line in (out/'ssl_0.1_0_now'/'search'/'history.jsonl').read_text().splitlines()]
plot_search(history).clear(); plt.close('all')                    # imports and fonts loaded before timing
times = {True: [], False: []}
for _ in range(3):
    for trim in (True, False, False, True):
        fig = plot_search(history)
        t = time.perf_counter()
        save_figure(fig, out/'search.png', trim=trim)
        times[trim].append(time.perf_counter() - t)
for trim, v in times.items():
    print(f'(c) save_figure(trim={trim}): median {statistics.median(v):.3f} s', [round(u, 3) for u in v])
shutil.rmtree(out)
