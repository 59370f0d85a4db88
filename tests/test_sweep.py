"A tiny sweep through a local Ray runtime (2 CPUs): the local executor's metrics, a worker killed mid-search, failures."
import json, os, sys, time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip('ray')
from ssmnas.core import SsmnasError, read_json
from ssmnas.data import open_dataset
from ssmnas.synth import make_synthetic_mmimdb
from ssmnas.sweep import run_sweep, ssmnas_sweep, SweepFailed, trial_dir, _sweep_parser, _process_pool, _stop_pool
from ssmnas.trial import configs_from_args, run_trial
from ssmnas.study import trial_timings

# the sweep as ssmnas_sweep takes it: the configurations below are the command's, so that it reads the trials back
JOBS = (['ssl', 'bmnas'], [0.5], [0])                # methods, r values, seeds
SWEEP = ['--methods', 'ssl', 'bmnas', '--r', '0.5', '--seeds', '0', '--device', 'cpu']
TINY = ['--protocol', 'paper', '--batch_size', '32', '--search_epochs', '2', '--rep_epochs', '1', '--clf_epochs', '2',
        '--C', '8', '--L', '4', '--image_width_div', '16', '--text_pretrain_epochs', '1']

@pytest.fixture(scope='module')
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('sweep')
    path = make_synthetic_mmimdb(tmp/'tiny.hdf5', n_samples=200, height=64, width=40)
    parser, *options = _sweep_parser()
    scfg, tcfg = configs_from_args(parser.parse_args(['--data', str(path), '--out', str(tmp), *TINY]), *options)[:2]
    # one torch thread, as each Ray task with one CPU has: the same thread count gives the same bits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try: local = run_sweep(open_dataset(path), *JOBS, tmp/'local', scfg, tcfg, device='cpu', progress=False)
    finally: torch.set_num_threads(threads)
    secs = {'local': time.perf_counter() - t0}
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    secs['ray_init'] = time.perf_counter() - t0
    yield dict(tmp=tmp, path=path, scfg=scfg, tcfg=tcfg, local=local, secs=secs)
    ray.shutdown()
    print({k: round(v, 1) for k, v in secs.items()})

def _ray_sweep(ctx, root, **kw):
    return run_sweep(str(ctx['path']), *JOBS, ctx['tmp']/root, ctx['scfg'], ctx['tcfg'], device='cpu', executor='ray',
                     progress=False, **kw)

def _mtimes(root):
    return {str(p): p.stat().st_mtime_ns for p in sorted(Path(root).glob('*/metrics.json'))}

def test_ray_matches_local(ctx):
    t0 = time.perf_counter()
    got = _ray_sweep(ctx, 'ray')
    ctx['secs']['ray_sweep'] = time.perf_counter() - t0
    assert [(m['method'], m['seed']) for m in got] == [('ssl', 0), ('bmnas', 0)]
    assert got == ctx['local']                          # every metric, to the last bit, and the genotypes
    for m in ('ssl', 'bmnas'):
        for f in ('metrics.json', 'genotype.json', 'pools.json'):
            got, want = (trial_dir(ctx['tmp']/root, m, 0.5, 0)/f for root in ('ray', 'local'))
            assert got.read_text() == want.read_text(), (m, f)
        # the trial records the sweep's command line, not the Ray worker's
        assert read_json(trial_dir(ctx['tmp']/'ray', m, 0.5, 0)/'run.json')['argv'] == sys.argv
    assert ray.is_initialized()                         # a runtime the caller started is left running

def test_ray_rerun_reads_back(ctx):
    before = _mtimes(ctx['tmp']/'ray')
    assert len(before) == 2
    got = _ray_sweep(ctx, 'ray')
    assert got == ctx['local'] and _mtimes(ctx['tmp']/'ray') == before

def test_worker_killed_mid_search_resumes(ctx):
    marker = ctx['tmp']/'killed_once'

    def dying_trial(data, *args, **kwargs):
        # the first attempt ends its worker process after the first of the two search epochs (its checkpoint written)
        if not marker.exists():
            import ssmnas.trial
            search = ssmnas.trial.search
            def exit_after_epoch_1(epoch):
                if epoch == 1: marker.write_text(str(os.getpid())); os._exit(1)
            ssmnas.trial.search = lambda *a, **k: search(*a, **k, on_epoch_end=exit_after_epoch_1)
        return run_trial(data, *args, **kwargs)

    got = run_sweep(str(ctx['path']), ['ssl'], [0.5], [0], ctx['tmp']/'killed', ctx['scfg'], ctx['tcfg'], device='cpu',
                    executor='ray', max_retries=2, progress=False, trial_fn=dying_trial)
    assert marker.exists()                                            # the first attempt did die
    folder = trial_dir(ctx['tmp']/'killed', 'ssl', 0.5, 0)
    assert json.loads((folder/'search'/'run.json').read_text())['resumed_from_epoch'] == 1
    assert got == ctx['local'][:1]                                    # the same metrics as the uninterrupted trial

def test_ray_builds_each_seeds_bank_once(ctx, tmp_path):
    "A banked sweep on Ray builds a seed's view bank in a task of its own; its ssl trials adopt it: the same bits."
    scfg, threads = replace(ctx['scfg'], view_bank=2), torch.get_num_threads()
    torch.set_num_threads(1)                            # as each one-CPU Ray task has
    try: local = run_sweep(open_dataset(ctx['path']), ['ssl'], [0.5, 1.0], [0, 1], tmp_path/'local', scfg,
                           ctx['tcfg'], device='cpu', progress=False)
    finally: torch.set_num_threads(threads)
    got = run_sweep(str(ctx['path']), ['ssl'], [0.5, 1.0], [0, 1], tmp_path/'ray', scfg, ctx['tcfg'], device='cpu',
                    executor='ray', progress=False)
    assert got == local                                 # a seed given another seed's bank would have other bits
    def built(root): return [json.loads((trial_dir(root, 'ssl', r, s)/'run.json').read_text())['view_bank_built']
                             for s in (0, 1) for r in (0.5, 1.0)]
    assert built(tmp_path/'local') == [True, False, True, False] and built(tmp_path/'ray') == [False] * 4
    # each seed's bank task's build is named in its trials' records, and counted once per seed beside the trials
    dirs = [trial_dir(root, 'ssl', r, s) for root in ('local', 'ray') for s in (0, 1) for r in (0.5, 1.0)]
    ray_banks = {json.loads((tmp_path/d/'run.json').read_text())['view_bank_handed_over']['id'] for d in dirs[4:]}
    local_t, ray_t = (trial_timings([tmp_path/d for d in ds]) for ds in (dirs[:4], dirs[4:]))
    assert len(ray_banks) == 2 and (local_t['banks_handed_over'], ray_t['banks_handed_over']) == (0, 2)
    assert ray_t['by_phase_s']['view_bank'] > 0.2 * local_t['by_phase_s']['view_bank']   # (a build: not a lookup)

def test_failed_trial_reported_others_finish(ctx, capsys):
    def flaky(data, method, r, seed, out, *a, **k):
        if seed == 1: raise RuntimeError(f'no luck for {method}\nsecond line')
        return {'method': method, 'seed': seed, 'rows': data.n_rows}

    with pytest.raises(SweepFailed) as e:
        run_sweep(str(ctx['path']), ['ssl', 'bmnas'], [0.5], [0, 1, 2], ctx['tmp']/'flaky', executor='ray',
                  trial_fn=flaky)
    root = ctx['tmp']/'flaky'
    assert str(e.value).startswith(f"2 of 6 trials failed, the others finished: {root/'ssl_r0.5_s1'} "
                                   f"(RuntimeError: no luck for ssl); {root/'bmnas_r0.5_s1'} "
                                   "(RuntimeError: no luck for bmnas)")
    assert [m and m['seed'] for m in e.value.results] == [0, 0, None, None, 2, 2]
    assert 'second line' in (root/'ssl_r0.5_s1'/'error.txt').read_text()
    err = capsys.readouterr().err
    assert f"trial failed: {root/'bmnas_r0.5_s1'}: RuntimeError: no luck for bmnas" in err

def test_cli_ray_reads_back(ctx, capsys):
    ssmnas_sweep(['--data', str(ctx['path']), '--out', str(ctx['tmp']/'ray'), '--executor', 'ray', *SWEEP, *TINY])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x['weighted_f1'] for x in lines] == [m['weighted_f1'] for m in ctx['local']]
    assert lines[1]['folder'] == str(ctx['tmp']/'ray'/'bmnas_r0.5_s0')

def test_cli_bad_input_is_one_line(ctx, capsys):
    with pytest.raises(SystemExit) as e:
        ssmnas_sweep(['--data', str(ctx['path']), '--out', str(ctx['tmp']/'x'), '--executor', 'ray',
                      '--gpus_per_trial', '1.5'])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'gpus_per_trial must be a fraction in (0, 1] or a whole number, got 1.5' in err[0]

def test_no_room_is_one_line(ctx):
    with pytest.raises(SsmnasError, match=r'Ray cluster \(0 GPU, 2 CPU\) has no room for one trial \(0 GPU, 3 CPU\)'):
        _ray_sweep(ctx, 'no_room', cpus_per_trial=3)
    assert ray.is_initialized()

def _flaky_trial(data, method, r, seed, out, *a, **k):
    "A stand-in trial at module level (a worker process imports it by name): seed 1 fails."
    if seed == 1: raise RuntimeError(f'no luck for {method}\nsecond line')
    return {'method': method, 'seed': seed, 'rows': data.n_rows, 'threads': torch.get_num_threads()}

def test_local_workers_match_one_after_another(ctx):
    "Two trials at once in worker processes (one torch thread each here): the same bits as one after another."
    threads = torch.get_num_threads()
    torch.set_num_threads(2)                            # shared out: one thread per worker, as the local run had
    try: got = run_sweep(str(ctx['path']), *JOBS, ctx['tmp']/'workers', ctx['scfg'], ctx['tcfg'], device='cpu',
                         progress=False, workers=2)
    finally: torch.set_num_threads(threads)
    assert got == ctx['local']
    for m in ('ssl', 'bmnas'):
        got, want = (trial_dir(ctx['tmp']/root, m, 0.5, 0)/'genotype.json' for root in ('workers', 'local'))
        assert got.read_text() == want.read_text(), m
        assert read_json(trial_dir(ctx['tmp']/'workers', m, 0.5, 0)/'run.json')['argv'] == sys.argv

def test_local_workers_report_a_failure_others_finish(ctx, capsys):
    root = ctx['tmp']/'workers_flaky'
    with pytest.raises(SweepFailed) as e:
        run_sweep(str(ctx['path']), ['ssl', 'bmnas'], [0.5], [0, 1], root, trial_fn=_flaky_trial, workers=2)
    assert str(e.value).startswith('2 of 4 trials failed, the others finished: ')  # in the order they ended
    for m in ('ssl', 'bmnas'): assert f"{root/f'{m}_r0.5_s1'} (RuntimeError: no luck for {m})" in str(e.value)
    assert [m and m['seed'] for m in e.value.results] == [0, 0, None, None]
    assert e.value.results[0]['rows'] == 200
    assert 'second line' in (root/'bmnas_r0.5_s1'/'error.txt').read_text()

def test_workers_refuse_other_data(ctx, tmp_path):
    """The driver read the text as plain vectors (no token vectors); a worker opening the file would find them:
    refused in one line before any worker starts."""
    data = open_dataset(ctx['path'], token_vectors=False)
    with pytest.raises(SsmnasError, match='a worker opens this file with the token vector file beside it'):
        run_sweep(data, ['bmnas'], [0.5], [0], tmp_path/'other', ctx['scfg'], ctx['tcfg'], device='cpu',
                  progress=False, workers=2)
    assert not (tmp_path/'other').exists()

def test_worker_killed_restarts_the_pool(ctx):
    "A worker killed mid-search takes the pool with it; its trial starts again in a new pool and resumes."
    marker, threads = ctx['tmp']/'killed_local_once', torch.get_num_threads()
    torch.set_num_threads(2)                            # one thread per worker, as the local run had
    try: got = run_sweep(str(ctx['path']), ['ssl'], [0.5], [0], ctx['tmp']/'killed_local', ctx['scfg'], ctx['tcfg'],
                         device='cpu', progress=False, workers=2, trial_fn=_dies_once,
                         trial_kw={'marker': str(marker)})
    finally: torch.set_num_threads(threads)
    assert marker.exists()
    folder = trial_dir(ctx['tmp']/'killed_local', 'ssl', 0.5, 0)
    assert json.loads((folder/'search'/'run.json').read_text())['resumed_from_epoch'] == 1
    assert got == ctx['local'][:1]

def _wait_for(path, secs=60):
    t0 = time.monotonic()
    while not Path(path).exists():
        if time.monotonic() - t0 > secs: raise TimeoutError(f'{path} never appeared')
        time.sleep(0.05)

def _dies_while_the_other_runs(data, method, r, seed, out, *a, root, **k):
    "Seed 0's first try ends its process while seed 1's trial runs; seed 1's ends after that (module level: spawned)."
    n = len(list(Path(root).glob(f'try_s{seed}_*')))
    (Path(root)/f'try_s{seed}_{n}').touch()
    if seed == 0 and n == 0: _wait_for(Path(root)/'try_s1_0'); (Path(root)/'died').touch(); os._exit(1)
    if seed == 1: _wait_for(Path(root)/'died')
    return {'seed': seed, 'tries': n + 1}

def test_a_dying_worker_ends_only_its_own_trial(ctx, tmp_path):
    "Each worker is a process of its own: the trial running beside a dying one finishes on its first try."
    got = run_sweep(str(ctx['path']), ['ssl'], [0.5], [0, 1], tmp_path/'runs', progress=False, workers=2,
                    trial_fn=_dies_while_the_other_runs, trial_kw={'root': str(tmp_path)})
    assert got == [{'seed': 0, 'tries': 2}, {'seed': 1, 'tries': 1}]

def _running(pid) -> bool:
    "Whether process `pid` runs (not gone, not a zombie): asked of /proc, since the pool's own thread may reap it."
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError: return False

@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='reads /proc')
def test_stop_pool_ends_its_worker():
    "An interrupted sweep ends its workers at once, not after their trials (120 s here)."
    pool = _process_pool(1)
    pool.submit(time.sleep, 120)
    pids = [p.pid for p in pool._processes.values()]
    _stop_pool(pool)
    t0 = time.monotonic()
    while any(map(_running, pids)) and time.monotonic() - t0 < 30: time.sleep(0.1)
    assert pids and not any(map(_running, pids))

def test_bank_from_another_model_is_left(ctx):
    "A trial handed a bank built on another GPU or CPU model neither adopts nor copies it (the trial builds its own)."
    from types import SimpleNamespace
    from ssmnas import viewbank
    from ssmnas.sweep import _data_source, _worker_task
    def trial(data, *args, **kwargs): return dict(viewbank._SHARED_BANK)
    viewbank.forget_view_banks()
    elsewhere = SimpleNamespace(built_on='CPU elsewhere', key=('elsewhere',))     # (adopting it would fail: no taps)
    threads = torch.get_num_threads()
    try: held = _worker_task(trial, _data_source(open_dataset(ctx['path'])), True, 1, 'ssl', 0.5, 0, '', None, None,
                             {}, 'cpu', elsewhere)
    finally: torch.set_num_threads(threads)
    assert held == {}

STOPPED_WORKER = """
import sys, time
from pathlib import Path
from ssmnas.core import progress_bar
from ssmnas.sweep import _process_pool, _stop_pool
def busy(marker):
    progress_bar(range(1), disable=True); Path(marker).touch(); time.sleep(60)
if __name__ == '__main__':
    pool = _process_pool(1); pool.submit(busy, sys.argv[1])
    while not Path(sys.argv[1]).exists(): time.sleep(0.05)
    _stop_pool(pool)
"""

def test_stopped_worker_leaks_no_semaphore(tmp_path):
    "A worker ended by an interrupt made its bars without tqdm's multiprocessing lock: Python warns of no leak at exit."
    pytest.importorskip('tqdm')                      # (PlainBar takes no lock at all)
    import subprocess, sys
    (tmp_path/'stop.py').write_text(STOPPED_WORKER)
    res = subprocess.run([sys.executable, str(tmp_path/'stop.py'), str(tmp_path/'started')], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and (tmp_path/'started').exists(), res.stderr
    assert 'leaked semaphore' not in res.stderr, res.stderr

def _dies_once(data, *args, marker, **kwargs):
    "run_trial, whose first attempt ends its worker process after the first search epoch (module level: spawned)."
    if not Path(marker).exists():
        import ssmnas.trial
        search = ssmnas.trial.search
        def exit_after_epoch_1(epoch):
            if epoch == 1: Path(marker).write_text(str(os.getpid())); os._exit(1)
        ssmnas.trial.search = lambda *a, **k: search(*a, **k, on_epoch_end=exit_after_epoch_1)
    return run_trial(data, *args, **kwargs)
