"""The CPU pools of the frozen VGG19, max_pool2d against max_pool2x2, measured in one process (one torch thread):
(a) a VGG19 / 8 forward over 192 posters of 64 x 40 (bf16 where the CPU has it), interleaved timings;
(b) one `ssl` trial of the cpu protocol at r = 0.1, seed 0, alternating. Run from the repository root:
    OMP_NUM_THREADS=1 .venv/bin/python reports/cpu_pools/measure.py > reports/cpu_pools/measure.txt"""
import contextlib, io, json, shutil, statistics, tempfile, time
from pathlib import Path
import torch
import torch.nn.functional as F
import ssmnas.backbones as bb
from ssmnas.core import cpu_bf16
from ssmnas.trial import ssmnas_run

torch.set_num_threads(1)
FAST, SLOW = bb.max_pool2x2, (lambda x: F.max_pool2d(x, 2))
PATHS = {'max_pool2d': SLOW, 'max_pool2x2': FAST}
print(f'torch {torch.__version__}, cpu_bf16 {cpu_bf16()}, one thread')

vgg = bb.VGG19Taps(8).eval().requires_grad_(False)
x = torch.rand(192, 3, 64, 40).contiguous(memory_format=torch.channels_last)
def ms_per_forward(n=10):
    vgg(x)
    t = time.perf_counter()
    for _ in range(n): vgg(x)
    return (time.perf_counter() - t) / n * 1e3
with torch.no_grad():
    taps = {}
    for name, fn in PATHS.items(): bb.max_pool2x2 = fn; taps[name] = vgg(x)
    print('(a) taps equal:', all(torch.equal(a, b) for a, b in zip(*taps.values())))
    times = {name: [] for name in PATHS}
    for _ in range(5):
        for name, fn in PATHS.items(): bb.max_pool2x2 = fn; times[name].append(ms_per_forward())
    for name, v in times.items():
        print(f'(a) {name}: median {statistics.median(v):.1f} ms a forward', [round(u, 1) for u in v])

out = Path(tempfile.mkdtemp())
for rnd in range(2):
    for name, fn in PATHS.items():
        bb.max_pool2x2 = fn
        shutil.rmtree(out/name, ignore_errors=True)
        t = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            ssmnas_run(['--data', 'data/synthetic_mmimdb.hdf5', '--method', 'ssl', '--r', '0.1', '--out', str(out/name),
                        '--protocol', 'cpu'])
        wall = time.perf_counter() - t
        f1 = json.loads((out/name/'metrics.json').read_text())['weighted_f1']
        phases = json.loads((out/name/'run.json').read_text())['timings_s']
        print(f'(b) round {rnd + 1}, {name}: {wall:.2f} s, weighted F1 {f1!r},',
              {k: round(v, 2) for k, v in phases.items()})
bb.max_pool2x2 = FAST
