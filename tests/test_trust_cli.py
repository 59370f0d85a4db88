"""Bad data and bad state at the command line, as a user meets them: each is one stderr line, exit
status 2, and no result written; checked before any slow work."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import h5py
import numpy as np
import pytest
from ssmnas.synth import make_synthetic_mmimdb
from ssmnas.backbones import VGG19Taps
import torch

TINY = ['--batch_size', '32', '--C', '8', '--L', '4', '--image_width_div', '16', '--device', 'cpu']
MODULES = {'ssmnas_search': 'search', 'ssmnas_run': 'trial', 'ssmnas_check': 'check', 'ssmnas_synth': 'synth',
           'ssmnas_sweep': 'sweep'}


def installed(name):
    "The console script `name`: on PATH, or beside this interpreter (a venv that is not activated)."
    beside = Path(sys.executable).parent/name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def cli(name, *args, wait=True):
    exe = installed(name)
    cmd = [exe] if exe else [sys.executable, '-c',
                             f'import sys; from ssmnas.{MODULES[name]} import {name}; sys.argv[0] = "{name}"; {name}()']
    cmd += [str(a) for a in args]
    if not wait: return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def one_line_error(res, name, *words):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(lines) == 1 and lines[0].startswith(f'{name}: error:'), res.stderr
    for w in words: assert w in lines[0], (w, lines[0])
    return lines[0]


def nothing_written(out):
    return not Path(out).exists() or not [p for p in Path(out).rglob('*') if p.name != '.lock']


@pytest.fixture(scope='module')
def twin(tmp_path_factory):
    d = tmp_path_factory.mktemp('trust')
    os.environ['SSMNAS_CACHE'] = str(d/'cache')      # subprocesses inherit it: the user's cache stays untouched
    return make_synthetic_mmimdb(d/'twin.hdf5', n_samples=200, height=64, width=40, seed=5)


def edited(twin, tmp_path, edit, name='bad.hdf5'):
    bad = tmp_path/name
    shutil.copy(twin, bad)
    shutil.copy(twin.with_name(twin.stem + '.token_vectors.npy'), bad.with_name(bad.stem + '.token_vectors.npy'))
    with h5py.File(bad, 'r+') as f: edit(f)
    return bad


def _nan_feature(f): f['features'][7, 3] = np.nan
def _no_label(f): f['genres'][4] = 0
def _label_two(f): f['genres'][2, 0] = 2
def _one_genre(f): f['genres'][...] = 0; f['genres'][:, 0] = 1

@pytest.mark.parametrize('edit, says', [(_nan_feature, 'features: NaN or inf in row 7'),
                                         (_no_label, 'genres: row 4 has no label'),
                                         (_label_two, 'genres: row 2 holds a value other than 0 or 1'),
                                         (_one_genre, "genres: only class 'Drama' occurs in 200 rows")])
def test_every_entry_point_refuses_what_check_refuses(twin, tmp_path, edit, says):
    bad = edited(twin, tmp_path, edit)
    one_line_error(cli('ssmnas_check', bad), 'ssmnas_check', says)
    one_line_error(cli('ssmnas_search', '--data', bad, '--epochs', '1', '--out', tmp_path/'s', '--r', '0.3', *TINY),
                   'ssmnas_search', says)
    one_line_error(cli('ssmnas_run', '--data', bad, '--method', 'bmnas', '--r', '0.3', '--out', tmp_path/'t',
                       '--search_epochs', '1', '--clf_epochs', '1', *TINY), 'ssmnas_run', says)
    assert nothing_written(tmp_path/'s') and nothing_written(tmp_path/'t')


def test_diverging_loss_stops_in_one_line(twin, tmp_path):
    # finite features at float32's edge pass the check but make the text backbone's loss NaN
    def huge(f): f['features'][...] = np.sign(f['features'][...] + 1e-9) * 3e38
    bad = edited(twin, tmp_path, huge)
    res = cli('ssmnas_run', '--data', bad, '--method', 'ssl', '--r', '0.3', '--out', tmp_path/'t',
              '--search_epochs', '1', '--rep_epochs', '1', '--clf_epochs', '1', *TINY)
    one_line_error(res, 'ssmnas_run', 'text backbone pretraining (BCE): the loss became nan at epoch 1')
    assert not (tmp_path/'t'/'metrics.json').exists()


@pytest.mark.slow
def test_search_folder_refuses_other_data_and_damaged_checkpoint(twin, tmp_path):
    out = tmp_path/'s'
    args = ['--epochs', '1', '--out', out, '--r', '0.3', *TINY]
    assert cli('ssmnas_search', '--data', twin, *args).returncode == 0
    config = json.loads((out/'config.json').read_text())
    assert config['data']['fingerprint'] and config['data']['bytes'] == twin.stat().st_size
    other = edited(twin, tmp_path, lambda f: f['genres'].__setitem__((5, 22), 1 - f['genres'][5, 22]), 'other.hdf5')
    res = cli('ssmnas_search', '--data', other, *args)
    one_line_error(res, 'ssmnas_search', 'differs: data.fingerprint (the run was made from', '--fresh')
    assert 'searching on' not in res.stdout                  # refused before the backbones were built
    # a truncated checkpoint beside the finished search makes it an unfinished one that cannot resume
    (out/'checkpoint.pt').write_bytes(b'PK\x03\x04 not a whole checkpoint')
    one_line_error(cli('ssmnas_search', '--data', twin, *args), 'ssmnas_search', 'checkpoint.pt: cannot resume',
                   '--fresh')
    res = cli('ssmnas_search', '--data', twin, *args, '--fresh')
    assert res.returncode == 0, res.stderr
    assert not (out/'checkpoint.pt').exists() and (out/'genotype.json').exists()
    res = cli('ssmnas_search', '--data', twin, *args)        # finished: read back, no backbone built
    assert res.returncode == 0 and 'read back' in res.stdout and 'searching on' not in res.stdout, res.stdout
    for line in (out/'history.jsonl').read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f'{c} in history'))


def test_real_looking_file_needs_named_image_weights(twin, tmp_path):
    real = edited(twin, tmp_path, lambda f: f.attrs.__delitem__('ssmnas_synthetic'), 'real.hdf5')
    args = ['--method', 'bmnas', '--r', '0.3', '--search_epochs', '1', '--clf_epochs', '1', *TINY]
    one_line_error(cli('ssmnas_run', '--data', real, '--out', tmp_path/'t', *args), 'ssmnas_run',
                   '--image_weights random')
    assert nothing_written(tmp_path/'t')
    (tmp_path/'junk.pth').write_bytes(b'not a checkpoint')     # weights that would not load: refused, nothing written
    for weights, says in (('randm', 'VGG19 weights file randm not found'),
                          (tmp_path/'junk.pth', 'cannot read VGG19 weights'), ('imagenet', 'full-width')):
        one_line_error(cli('ssmnas_run', '--data', real, '--out', tmp_path/'t', *args, '--image_weights', weights),
                       'ssmnas_run', says)
        assert nothing_written(tmp_path/'t')
    weights = tmp_path/'vgg16th.pth'          # a VGG19 of TINY's width, as a torchvision state dict
    torch.save({f'features.{k}': v for k, v in VGG19Taps(width_div=16).features.state_dict().items()}, weights)
    res = cli('ssmnas_run', '--data', real, '--out', tmp_path/'t', *args, '--image_weights', weights)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path/'t'/'run.json').read_text())['image_weights'] == str(weights)
    weights.unlink()                          # a finished trial reads back without its weights (results copied away)
    again = cli('ssmnas_run', '--data', real, '--out', tmp_path/'t', *args, '--image_weights', weights)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1]) == json.loads(res.stdout.splitlines()[-1])


@pytest.mark.parametrize('bad, says', [(['--seed', '-1'], 'seed must be an integer >= 0'),
                                        (['--device', 'tpu'], "unknown device 'tpu'"),
                                        (['--clf_epochs', '0'], 'clf_epochs must be an integer >= 1'),
                                        (['--rep_epochs', '-2'], 'rep_epochs must be an integer >= 0'),
                                        (['--L', '5'], 'L must be a perfect square'),
                                        (['--image_width_div', '3'], 'image_width_div must divide 64'),
                                        (['--w_lr', '-1'], 'w_lr must be a number > 0, got -1'),
                                        (['--arch_lr', '-1'], 'arch_lr must be a number >= 0'),
                                        (['--r', 'abc'], "argument --r: invalid float value: 'abc'")])
def test_bad_arguments(twin, tmp_path, bad, says):
    args = ['--data', twin, '--method', 'ssl', '--r', '0.3', '--out', tmp_path/'t', *TINY, *bad]
    one_line_error(cli('ssmnas_run', *args), 'ssmnas_run', says)
    assert nothing_written(tmp_path/'t')


def test_output_folder_problems(twin, tmp_path):
    (tmp_path/'afile').write_text('x')
    args = ['--data', twin, '--epochs', '1', '--r', '0.3', *TINY]
    one_line_error(cli('ssmnas_search', *args, '--out', tmp_path/'afile'), 'ssmnas_search',
                   'afile: exists and is not a folder')
    if Path('/sys').is_dir():     # sysfs refuses new folders even to root, like a read-only mount
        one_line_error(cli('ssmnas_search', *args, '--out', '/sys/ssmnas_out'), 'ssmnas_search',
                       '/sys/ssmnas_out: cannot write here')
    # a search into a sweep's folder, or a sweep into a search's, would mix their files: refused, nothing written
    sweep_root = tmp_path/'sweep'
    (sweep_root/'ssl_r0.3_s0').mkdir(parents=True); (sweep_root/'ssl_r0.3_s0'/'config.json').write_text('{}')
    one_line_error(cli('ssmnas_search', *args, '--out', sweep_root), 'ssmnas_search',
                   "holds other runs' folders (ssl_r0.3_s0)")
    assert [p.name for p in sweep_root.iterdir()] == ['ssl_r0.3_s0']
    a_search = tmp_path/'a_search'; a_search.mkdir(); (a_search/'config.json').write_text('{}')
    one_line_error(cli('ssmnas_sweep', '--data', twin, '--methods', 'ssl', '--r', '0.3', '--trials', '1', *TINY,
                       '--out', a_search), 'ssmnas_sweep', "is a search's or a trial's folder")
    assert [p.name for p in a_search.iterdir()] == ['config.json']


def test_small_posters_and_closed_pipe(twin, tmp_path):
    res = cli('ssmnas_synth', tmp_path/'small.hdf5', '--n_samples', 30, '--height', 16, '--width', 16)
    one_line_error(res, 'ssmnas_synth', 'height must be an integer >= 32')
    assert not (tmp_path/'small.hdf5').exists()
    small = edited(twin, tmp_path, lambda f: (f.__delitem__('images'),
                                              f.create_dataset('images', data=np.zeros((200, 3, 16, 24), np.int32))))
    one_line_error(cli('ssmnas_check', small), 'ssmnas_check', 'modality image: 16 x 24 images are smaller than the 32')
    one_line_error(cli('ssmnas_search', '--data', small, '--epochs', '1', '--out', tmp_path/'s', *TINY),
                   'ssmnas_search', '16 x 24 images')
    exe = installed('ssmnas_check') or pytest.skip('ssmnas_check is not installed')
    piped = subprocess.run(f'"{exe}" "{twin}" | head -1', shell=True, capture_output=True, text=True, timeout=120)
    assert piped.stdout.count('\n') == 1 and piped.stderr == '', piped.stderr


def test_damaged_hdf5_and_foreign_posters(twin, tmp_path):
    damaged = tmp_path/'damaged.hdf5'
    shutil.copy(twin, damaged)
    with open(damaged, 'r+b') as f: f.seek(512); f.write(bytes(3584))
    one_line_error(cli('ssmnas_check', damaged), 'ssmnas_check', 'damaged')
    uint8 = edited(twin, tmp_path, lambda f: (f.__delitem__('images'),
                                              f.create_dataset('images', data=np.zeros((200, 3, 64, 40), np.uint8))))
    one_line_error(cli('ssmnas_check', uint8), 'ssmnas_check', 'images: wrong dtype uint8, expected int32')


@pytest.mark.slow
def test_second_process_on_a_folder_is_refused_and_a_killed_one_leaves_no_lock(twin, tmp_path):
    out = tmp_path/'t'
    args = ['--data', twin, '--method', 'ssl', '--r', '0.3', '--out', out, '--search_epochs', '30', '--rep_epochs', '1',
            '--clf_epochs', '1', *TINY]
    first = cli('ssmnas_run', *args, wait=False)
    try:
        for _ in range(600):
            if (out/'config.json').exists() or first.poll() is not None: break
            time.sleep(0.1)
        assert first.poll() is None, first.communicate()
        one_line_error(cli('ssmnas_run', *args), 'ssmnas_run', 'another process', 'is running in this folder')
    finally:
        first.send_signal(signal.SIGKILL); first.wait()
    # the kernel released the killed process's lock: a new run goes ahead (and resumes its search)
    res = cli('ssmnas_run', *[a if a != '30' else '1' for a in args], '--fresh')
    assert res.returncode == 0, res.stderr
