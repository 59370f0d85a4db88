"`ssmnas_search` and `ssmnas_run` from the shell, as a user runs them: outputs, resume, and one-line errors."
import json, shutil, subprocess, sys

import pytest
from ssmnas.synth import make_synthetic_mmimdb

TINY = ['--batch_size', '32', '--C', '8', '--L', '4', '--image_width_div', '16', '--device', 'cpu']

def _cli(name, *args):
    exe = shutil.which(name)
    cmd = [exe] if exe else [sys.executable, '-c',
                             f'import sys; from ssmnas.{ {"ssmnas_search": "search", "ssmnas_run": "trial"}[name]} '
                             f'import {name}; sys.argv[0] = "{name}"; {name}()']
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=300)

@pytest.fixture(scope='module')
def twin(tmp_path_factory):
    return make_synthetic_mmimdb(tmp_path_factory.mktemp('twin')/'twin.hdf5', n_samples=200, height=64, width=40,
                                 seed=4)

def test_search_cli_writes_genotype(twin, tmp_path):
    out = tmp_path/'search'
    res = _cli('ssmnas_search', '--data', twin, '--objective', 'contrastive', '--epochs', '2', '--out', out,
               '--r', '0.2', *TINY)
    assert res.returncode == 0, res.stderr
    geno = json.loads((out/'genotype.json').read_text())
    assert len(geno['cells']) == 2 and all(c['line'] in res.stdout for c in geno['cells'])
    assert len((out/'history.jsonl').read_text().splitlines()) == 2
    assert {'config.json', 'run.json', 'pools.json', 'search.png'} <= {p.name for p in out.iterdir()}
    pools = json.loads((out/'pools.json').read_text())
    assert len(pools['labeled']) + len(pools['unlabeled']) == 140 and len(pools['test']) == 60
    again = _cli('ssmnas_search', '--data', twin, '--objective', 'contrastive', '--epochs', '2', '--out', out,
                 '--r', '0.2', *TINY)
    assert again.returncode == 0 and f'read back {out/"genotype.json"}' in again.stdout, again.stderr
    assert f'wrote {out/"genotype.json"}' in res.stdout

def test_run_cli_and_rerun(twin, tmp_path):
    out = tmp_path/'trial'
    args = ['--data', twin, '--method', 'bmnas', '--r', '0.5', '--seed', '1', '--out', out, '--search_epochs', '1',
            '--clf_epochs', '2', *TINY]
    res = _cli('ssmnas_run', *args)
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout.strip().splitlines()[-1])
    assert m['method'] == 'bmnas' and 0 <= m['weighted_f1'] <= 1
    stamp = (out/'metrics.json').stat().st_mtime_ns
    again = _cli('ssmnas_run', *args)
    assert again.returncode == 0 and (out/'metrics.json').stat().st_mtime_ns == stamp
    assert 'finished before; its metrics read back' in again.stderr and 'read back' not in res.stderr
    # another step 3 on the same search: the finished search is read from the first trial, not run again
    adopt = list(args)
    adopt[adopt.index(out)] = tmp_path/'adopted'; adopt[adopt.index('--clf_epochs') + 1] = '3'
    res = _cli('ssmnas_run', *adopt, '--search_from', out)
    assert res.returncode == 0 and 'search not read' not in res.stderr, res.stderr
    assert json.loads((tmp_path/'adopted'/'run.json').read_text())['search_from'] == str(out)
    assert (tmp_path/'adopted'/'genotype.json').read_text() == (out/'genotype.json').read_text()
    res = _cli('ssmnas_run', *adopt, '--search_from', tmp_path/'nope', '--fresh')
    says = f'ssmnas_run: error: --search_from {tmp_path/"nope"}: no such trial folder'
    assert res.returncode != 0 and res.stderr.strip() == says, res.stderr

@pytest.mark.parametrize('bad, says', [(['--r', '0'], 'r must'), (['--r', '1.5'], 'r must'),
                                        (['--r', '0.001'], 'labeled')])
def test_run_cli_bad_r(twin, tmp_path, bad, says):
    out = tmp_path/'bad'
    res = _cli('ssmnas_run', '--data', twin, '--method', 'ssl', '--seed', '0', '--out', out, *bad, *TINY)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('ssmnas_run: error:') and says in lines[0], res.stderr
    assert not out.exists() or not any(out.iterdir())

def test_search_cli_missing_file(tmp_path):
    res = _cli('ssmnas_search', '--data', tmp_path/'nope.hdf5', '--out', tmp_path/'o', *TINY)
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1 and 'nope.hdf5' in res.stderr

@pytest.mark.slow
@pytest.mark.parametrize('method', ['probe', 'image_only'])
def test_run_cli_baselines(twin, tmp_path, method):
    "The baselines run from the shell like the searches, on the same rows (no search)."
    out = tmp_path/method
    res = _cli('ssmnas_run', '--data', twin, '--method', method, '--r', '0.5', '--seed', '1', '--out', out,
               '--clf_epochs', '2', *TINY)
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout.strip().splitlines()[-1])
    assert m['method'] == method and 0 <= m['weighted_f1'] <= 1
    assert json.loads((out/'metrics.json').read_text())['n_search_rows'] == 0 and not (out/'genotype.json').exists()

@pytest.mark.parametrize('method, says', [('audio_only', "got 'audio_only'")])   # unknown names: 11_trial's tests
def test_run_cli_bad_method(twin, tmp_path, method, says):
    res = _cli('ssmnas_run', '--data', twin, '--method', method, '--r', '0.5', '--out', tmp_path/'m', *TINY)
    lines = res.stderr.strip().splitlines()
    assert (res.returncode != 0 and len(lines) == 1 and 'method must be one of' in lines[0]
            and says in lines[0]), res.stderr
    assert not (tmp_path/'m').exists()

def _own_file(path, n=90):
    "A bring-your-own file (generic layout): a 32 x 32 photo, a caption as tokens, class-index labels."
    import h5py, numpy as np
    g = np.random.default_rng(0)
    y = np.arange(n) % 3
    with h5py.File(path, 'w') as f:
        f.attrs['layout'] = 'ssmnas-generic'
        f.attrs['modalities'] = json.dumps(['photo', 'caption'])
        f['inputs/photo'] = (g.integers(0, 200, (n, 3, 32, 32)) + 50 * (y == 1)[:, None, None, None]).astype(np.uint8)
        ids = f.create_group('inputs/caption').create_dataset('ids', (n,), dtype=h5py.vlen_dtype(np.int32))
        ids[:] = [np.array([y[i], 3 + i % 4], dtype=np.int32) for i in range(n)]
        f['inputs/caption/table'] = g.normal(size=(7, 8)).astype(np.float32)
        f['labels'] = y
        f['labels'].attrs['names'] = json.dumps(['cat', 'dog', 'bird'])
        f.attrs['split_bounds'] = json.dumps({'train': [0, 54], 'dev': [54, 66], 'test': [66, n]})
    return path

@pytest.mark.slow
@pytest.mark.parametrize('method', ['mfas', 'caption_only', 'probe_raw'])
def test_run_cli_own_file(tmp_path, method):
    "MFAS and the baselines on a file of one's own from the shell: its modalities' taps, one class per row."
    own = _own_file(tmp_path/'own.hdf5')
    out = tmp_path/method
    mfas = ['--mfas_layers', '2', '--mfas_iterations', '1', '--mfas_K', '2', '--mfas_epochs', '1']
    mfas = mfas if method == 'mfas' else []                # other methods refuse MFAS's options
    res = _cli('ssmnas_run', '--data', own, '--method', method, '--r', '1.0', '--out', out, '--image_weights', 'random',
               '--clf_epochs', '2', '--text_pretrain_epochs', '2', *mfas, *TINY)
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout.strip().splitlines()[-1])
    assert m['method'] == method and 0 <= m['accuracy'] <= 1 and 0 <= m['weighted_f1'] <= 1
    # TINY's --C and --L set a fusion search these methods do not run: noted, and not recorded as their settings
    assert f'note: --C, --L set a step --method {method} does not run (ignored)' in res.stderr, res.stderr
    assert json.loads((out/'config.json').read_text())['search']['C'] == 192        # the paper protocol's
    if method == 'mfas':
        geno = json.loads((out/'genotype.json').read_text())
        assert geno['tap_names'][0].startswith('Photo_') and geno['layers'][0].startswith('layer 1: Photo_')
        assert (out/'search'/'candidates.jsonl').exists()
