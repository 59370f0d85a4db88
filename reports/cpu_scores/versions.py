"""The first `library_versions()` call in a new process, before (186ac92: each library imported for its
`__version__`) and now (78cc56e: read without importing), three fresh processes each, alternating. Run from the
repository root:  .venv/bin/python reports/cpu_scores/versions.py > reports/cpu_scores/versions.txt"""
import json, subprocess, sys

BEFORE = '''
import importlib, platform
def library_versions():
    out = {'python': platform.python_version()}
    for name in ('ssmnas', 'torch', 'torchvision', 'numpy', 'h5py', 'sklearn', 'matplotlib'):
        try: out[name] = importlib.import_module(name).__version__
        except Exception: out[name] = None
    return out
'''
NOW = 'from ssmnas.core import library_versions\n'
TIMED = '''import ssmnas.trial, time, json
t = time.perf_counter(); v = library_versions(); print(json.dumps([time.perf_counter() - t, v]))
'''
found = {}
for _ in range(3):
    for name, code in (('before', BEFORE), ('now', NOW)):
        out = subprocess.run([sys.executable, '-c', code + TIMED], capture_output=True, text=True, check=True).stdout
        seconds, versions = json.loads(out)
        found.setdefault(name, []).append((seconds, versions))
        print(f'{name}: {seconds * 1e3:.1f} ms')
print('same versions:', all(v == found['before'][0][1] for runs in found.values() for _, v in runs))
print(found['now'][0][1])
