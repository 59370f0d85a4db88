"""Command-line tests of the data layer: `ssmnas_synth` writes a twin, `ssmnas_check` validates it,
and bad input ends in one stderr line and a non-zero exit, leaving nothing behind."""
import os, shutil, subprocess, sys
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ENTRY = {'ssmnas_synth': 'ssmnas.synth', 'ssmnas_check': 'ssmnas.check'}


def run(script, *args):
    "Run a console script (installed, or through the interpreter when it is not on PATH)."
    exe = shutil.which(script)
    if exe: cmd = [exe]
    else:
        cmd = [sys.executable, '-c',
               f'import sys; sys.argv[0] = {script!r}; from {ENTRY[script]} import {script}; {script}()']
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope='module')
def twin(tmp_path_factory):
    out = tmp_path_factory.mktemp('twin') / 'tiny.hdf5'
    res = run('ssmnas_synth', out, '--n_samples', 200, '--height', 32, '--width', 32, '--seed', 1)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f'{out}: 200 rows')
    return out


def test_synth_writes_file_and_table(twin):
    assert twin.exists() and twin.with_name('tiny.token_vectors.npy').exists()
    assert sorted(p.name for p in twin.parent.iterdir()) == ['tiny.hdf5', 'tiny.token_vectors.npy']


def test_synth_refuses_to_overwrite(twin):
    before = twin.stat().st_mtime_ns
    assert_one_line_error(run('ssmnas_synth', twin, '--n_samples', 30), 'tiny.hdf5: exists; --force to overwrite it')
    assert twin.stat().st_mtime_ns == before


def test_check_reports_splits_modalities_labels(twin):
    res = run('ssmnas_check', twin)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f'{twin}: layout mmimdb, 200 rows, 23 classes'
    assert lines[1:4] == ['train: 120 rows', 'dev: 20 rows', 'test: 60 rows']
    assert 'modality image: kind image, shape (3, 32, 32), dtype int32 BGR, Caffe means subtracted' in lines
    assert any(l.startswith('modality text: kind tokens, shape (300,), dtype float32 features') for l in lines)
    assert any(l.startswith('  Drama: ') for l in lines) and any(l.startswith('  Film-Noir: ') for l in lines)
    assert lines[-1].startswith('ok')
    # without the token table the text is the stored 300-d vector
    res = run('ssmnas_check', twin, '--no_tokens')
    assert 'modality text: kind vector, shape (300,), dtype float32' in res.stdout.splitlines()


def broken(twin, tmp_path, edit):
    bad = tmp_path / 'bad.hdf5'
    shutil.copy(twin, bad)
    with h5py.File(bad, 'r+') as f: edit(f)
    return bad


def assert_one_line_error(res, *words):
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert len(err) == 1, res.stderr
    for w in words: assert w in err[0], err[0]
    assert res.stdout == ''


def test_check_nan_in_features(twin, tmp_path):
    def nan(f): f['features'][17, 5] = np.nan
    assert_one_line_error(run('ssmnas_check', broken(twin, tmp_path, nan)), 'features', 'NaN', 'row 17')


def test_check_missing_key(twin, tmp_path):
    assert_one_line_error(run('ssmnas_check', broken(twin, tmp_path, lambda f: f.__delitem__('genres'))),
                          'genres: missing key')


def test_check_all_zero_label_row(twin, tmp_path):
    def empty(f): f['genres'][3] = 0
    assert_one_line_error(run('ssmnas_check', broken(twin, tmp_path, empty)), 'genres', 'row 3', 'no label')


def test_check_wrong_shape(twin, tmp_path):
    def short(f):
        x = f['features'][:150]; del f['features']; f['features'] = x
    assert_one_line_error(run('ssmnas_check', broken(twin, tmp_path, short)), 'features', '150 rows')


def test_check_missing_file(tmp_path):
    assert_one_line_error(run('ssmnas_check', tmp_path / 'nothing.hdf5'), 'nothing.hdf5', 'no such file')


def test_failed_synth_leaves_nothing(tmp_path):
    out = tmp_path / 'out' / 'zero.hdf5'
    assert_one_line_error(run('ssmnas_synth', out, '--n_samples', 0), 'n_samples')
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
