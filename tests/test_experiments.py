"""The three experiment notebooks (nbs/experiments/) run end to end by papermill on a tiny protocol,
in the order of `make study`."""
import csv, json, sys, time
from pathlib import Path

import pytest

papermill = pytest.importorskip('papermill')
from ssmnas.synth import make_synthetic_mmimdb
from ssmnas.sweep import trial_dir

REPO = Path(__file__).resolve().parents[1]
NBS = REPO/'nbs'/'experiments'
METHODS, R_VALUES, TRIALS = ['ssl', 'bmnas', 'mfas', 'probe', 'text_only'], [0.2, 1.0], 2
SEARCHES = ['ssl', 'bmnas']
TINY = dict(r_values=R_VALUES, trials=TRIALS, seed_base=0, methods=METHODS, device='cpu', batch_size=32,
            search_epochs=1, rep_epochs=1, clf_epochs=2, C=8, L=4, image_width_div=16, text_pretrain_epochs=1,
            temperature=0.5, extra_mfas={'layers': 2, 'iterations': 1, 'K': 2, 'epochs': 1})

def _execute(name, out_dir, **params):
    t0 = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        # the kernel inherits the environment: one torch thread keeps these tiny trials fast on a shared, busy machine
        mp.setenv('OMP_NUM_THREADS', '1')
        papermill.execute_notebook(str(NBS/f'{name}.ipynb'), str(out_dir/f'{name}.ipynb'), parameters=params,
                                   kernel_name='python3', cwd=str(REPO), progress_bar=False)
    return time.perf_counter() - t0

def _csv(path):
    with open(path, newline='') as f: return list(csv.DictReader(f))

def _metrics_mtimes(root):
    return {str(p): p.stat().st_mtime_ns for p in sorted(Path(root).glob('*/metrics.json'))}

@pytest.fixture(scope='module')
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('study')
    data = make_synthetic_mmimdb(tmp/'tiny.hdf5', n_samples=200, height=64, width=40)
    common = dict(TINY, data_path=str(data), reports_dir=str(tmp/'reports'))
    # the committed CPU bench record's costs, labelled with this tiny size, for the sweep to set its trials beside
    bench = json.loads((REPO/'reports'/'bench_cpu.json').read_text())
    bench['size'] |= {'height': 64, 'width': 40, 'image_width_div': 16, 'C': 8, 'L': 4, 'text': 'tokens',
                      'alternate': 'batch'}                                   # the cpu protocol's
    bench['batch_size'] = 32
    (tmp/'bench_tiny.json').write_text(json.dumps(bench))
    sweep_dir = tmp/'runs'/'r_sweep'
    secs = {}
    secs['r_sweep'] = _execute('r_sweep', tmp, **common, runs_dir=str(sweep_dir))
    mtimes = _metrics_mtimes(sweep_dir)
    first_protocol = json.loads((tmp/'reports'/'r_sweep_protocol.json').read_text())
    secs['r_sweep_again'] = _execute('r_sweep', tmp, **common, runs_dir=str(sweep_dir),
                                     bench_json=str(tmp/'bench_tiny.json'))
    secs['table3'] = _execute('table3', tmp, **common, runs_dir=str(tmp/'runs'/'table3'), sweep_runs_dir=str(sweep_dir))
    secs['architectures'] = _execute('architectures', tmp, **common, runs_dir=str(sweep_dir))
    return dict(tmp=tmp, reports=tmp/'reports', sweep_dir=sweep_dir, mtimes=mtimes, secs=secs,
                first_protocol=first_protocol)

def test_notebooks_have_parameters_cell():
    for name in ('r_sweep', 'table3', 'architectures'):
        nb = json.loads((NBS/f'{name}.ipynb').read_text())
        params = [c for c in nb['cells'] if 'parameters' in c.get('metadata', {}).get('tags', [])]
        assert len(params) == 1, name
        src = ''.join(params[0]['source'])
        for p in ('data_path', 'protocol', 'runs_dir', 'reports_dir', 'r_values', 'trials', 'seed_base', 'methods',
                  'device', 'batch_size', 'search_epochs', 'rep_epochs', 'clf_epochs', 'C', 'L', 'image_width_div',
                  'image_weights', 'text_pretrain_epochs', 'temperature', 'extra_search', 'extra_train', 'extra_mfas',
                  'executor', 'gpus_per_trial', 'address'):
            assert f'\n{p} = ' in '\n' + src, (name, p)
    assert (NBS/'.notest').exists()

def test_papermill_reads_every_parameter():
    "papermill skips (with a warning only) a line it cannot parse, e.g. one whose comment holds ' = '."
    for name in ('r_sweep', 'table3', 'architectures'):
        nb = json.loads((NBS/f'{name}.ipynb').read_text())
        src = next(''.join(c['source']) for c in nb['cells'] if 'parameters' in c['metadata'].get('tags', []))
        assigned = {l.split('=')[0].strip() for l in src.splitlines() if '=' in l and not l.startswith('#')}
        assert set(papermill.inspect_notebook(str(NBS/f'{name}.ipynb'))) == assigned, name

def test_r_sweep_reports(study):
    rep = study['reports']
    rows = _csv(rep/'r_sweep.csv')
    assert len(rows) == len(METHODS) * len(R_VALUES) * TRIALS
    assert list(rows[0]) == ['method', 'r', 'seed', 'weighted_f1', 'micro_f1', 'macro_f1', 'samples_f1', 'accuracy',
                             'distinct_predictions', 'n_labeled', 'n_search_rows', 'n_test', 'genotype']
    assert all(r['accuracy'] == '' for r in rows)          # multi-label data: no accuracy
    assert all(1 <= int(r['distinct_predictions']) <= int(r['n_test']) for r in rows)
    assert {(r['method'], float(r['r']), int(r['seed'])) for r in rows} == \
           {(m, r, s) for m in METHODS for r in R_VALUES for s in range(TRIALS)}
    for r in rows:
        assert 0 <= float(r['weighted_f1']) <= 1
        if r['method'] in SEARCHES: assert r['genotype'].startswith('Cell 1') and ' | Cell 2' in r['genotype']
        elif r['method'] == 'mfas': assert r['genotype'].startswith('layer 1: Image_') and int(r['n_search_rows']) > 0
        else: assert (int(r['n_search_rows']) == 0
                      and r['genotype'].startswith({'probe': 'linear probe', 'text_only': 'text'}[r['method']]))
    summary = _csv(rep/'r_sweep_summary.csv')
    assert len(summary) == len(METHODS) * len(R_VALUES) and all(int(float(s['n'])) == TRIALS for s in summary)
    constant = {(r['method'], r['r']) for r in rows if r['distinct_predictions'] == '1'}   # counted per method and r
    assert all((int(s['constant_trials']) > 0) == ((s['method'], s['r']) in constant) for s in summary)
    sel = _csv(rep/'search_selection.csv')                 # the epoch each fusion search kept
    assert sorted((r['method'], float(r['r']), int(r['seed'])) for r in sel) == \
           sorted((m, r, s) for m in SEARCHES for r in R_VALUES for s in range(TRIALS))
    assert all(1 <= int(r['best_epoch']) <= int(r['epochs']) for r in sel)
    stats = _csv(rep/'r_sweep_stats.csv')
    assert [(s['comparison'], float(s['r'])) for s in stats] == \
           [(f'ssl - {m}', r) for m in METHODS[1:] for r in R_VALUES]
    assert all(int(s['n_pairs']) == TRIALS for s in stats)
    assert (rep/'fig3_r_sweep.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    proto = json.loads((rep/'r_sweep_protocol.json').read_text())
    assert proto['parameters']['r_values'] == R_VALUES and proto['parameters']['clf_epochs'] == 2
    assert proto['search_config']['C'] == 8 and proto['train_config']['rep_epochs'] == 1
    assert proto['data']['path'].endswith('tiny.hdf5') and proto['run_info']['device'] == 'cpu'
    assert (proto['trial_timings']['n_trials'] == len(rows) and proto['trial_timings']['total_s'] > 0
            and proto['wall_s'] > 0)

def test_r_sweep_rerun_reads_trials_back(study):
    assert len(study['mtimes']) == len(METHODS) * len(R_VALUES) * TRIALS
    assert _metrics_mtimes(study['sweep_dir']) == study['mtimes']   # no finished trial was rerun
    # the protocol is the second run's: its sweep only read the trials back (robust to a loaded machine, unlike
    # comparing the two notebooks' wall times, which include the kernel's start)
    proto = json.loads((study['reports']/'r_sweep_protocol.json').read_text())
    assert proto['wall_s'] < max(2.0, 0.5 * proto['trial_timings']['total_s']), proto['wall_s']

def test_r_sweep_sets_trials_beside_the_bench(study):
    from ssmnas.bench import sweep_estimate
    from ssmnas.data import open_dataset
    proto = json.loads((study['reports']/'r_sweep_protocol.json').read_text())   # the second run's: bench_tiny.json
    x, timings = proto['extrapolation'], proto['trial_timings']
    assert x['bench_json'].endswith('bench_tiny.json') and x['size_differs'] == {} and x['bench'] == 'bench_cpu'
    bench = json.loads((study['tmp']/'bench_tiny.json').read_text())
    data = open_dataset(study['tmp']/'tiny.hdf5')
    n_pool, n_test = len(data.splits['train']) + len(data.splits['dev']), len(data.splits['test'])
    est = sweep_estimate(bench['costs_per_row'], n_pool, R_VALUES, TRIALS, TINY['search_epochs'], TINY['rep_epochs'],
                         TINY['clf_epochs'], n_test, text_epochs=proto['search_config']['text_pretrain_epochs'])
    for m in ('ssl', 'bmnas'):
        assert x['estimate_s'][m] == pytest.approx(TRIALS * sum(p[f'{m}_s'] for p in est['per_r']))
        assert sum(x['estimate_by_phase_s'][m].values()) == pytest.approx(x['estimate_s'][m])
        # the trials' own run.json: every phase, their backbones too, is measured beside the estimate (a record made
        # since the bench's step (f))
        runs = [json.loads(p.read_text())['timings_s'] for p in study['sweep_dir'].glob(f'{m}_r*_s*/run.json')]
        assert len(runs) == len(R_VALUES) * TRIALS
        assert x['measured_trial_s'][m] == pytest.approx(sum(v for t in runs for v in t.values()))
        assert (x['not_in_estimate_s'][m], x['not_in_estimate_phases'][m]) == (0, [])
        assert 'backbones' in x['measured_by_phase_s'][m]
        assert set(x['measured_by_phase_s'][m]) == set(x['estimate_by_phase_s'][m])
    assert sum(timings['by_method_s'].values()) == pytest.approx(timings['total_s'])
    # the second run read every trial back, on this machine's CPU with one torch thread each (OMP_NUM_THREADS=1)
    assert x['trials_read_back'] == timings['n_trials'] == len(METHODS) * len(R_VALUES) * TRIALS
    assert x['trial_devices'] and all('1 torch threads' in d for d in x['trial_devices']) and x['trials_missing'] == 0
    # the first run's: the committed reports/bench_cpu.json, measured at the cpu protocol's size, gives no estimate
    x = study['first_protocol']['extrapolation']
    assert x['bench_json'] == 'reports/bench_cpu.json' and x['estimate_s'] is None
    assert x['why_none'] == 'measured at other settings' and x['size_differs']['C'] == {'bench': 64, 'sweep': 8}

def test_table3_reports(study):
    rep = study['reports']
    md = (rep/'table3.md').read_text()
    for s in ('62.50', '62.92 ± 0.03', '62.46 ± 0.06', '57.54', 'quoted, real MM-IMDB', 'tiny.hdf5', 'no step 2',
              'synthetic twin'):
        assert s in md, s
    assert md.count('(n = 2)') == len(METHODS)
    rows = _csv(rep/'table3.csv')
    assert len(rows) == len(METHODS) * TRIALS and all(float(r['r']) == 1.0 for r in rows)
    for r in rows:   # the r = 1.0 trials of the methods without step 2 have the same configuration: reused, not rerun
        want = study['tmp']/'runs'/'table3' if r['method'] == 'ssl' else study['sweep_dir']
        assert Path(r['trial_dir']).parent == want, r
        if r['method'] == 'ssl':   # its own trial (no step 2), on the sweep's r = 1.0 search, read back
            assert json.loads((Path(r['trial_dir'])/'config.json').read_text())['train']['rep_epochs'] == 0
            swept = trial_dir(study['sweep_dir'], 'ssl', 1.0, int(r['seed']))
            assert r['search_from'] == str(swept), r
            assert (Path(r['trial_dir'])/'genotype.json').read_text() == (swept/'genotype.json').read_text()
        else: assert r['search_from'] == '', r
    proto = json.loads((rep/'table3_protocol.json').read_text())
    assert proto['train_config']['rep_epochs'] == 0 and proto['trial_timings']['n_trials'] == len(rows)

def test_architectures_reports(study):
    rep = study['reports']
    assert (rep/'fig4_architectures.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    freq = _csv(rep/'edge_op_frequency.csv')
    assert list(freq[0]) == ['method', 'r', 'kind', 'name', 'count', 'n_trials', 'share']
    assert {(f['method'], float(f['r'])) for f in freq} == {(m, r) for m in SEARCHES for r in R_VALUES}
    assert all(int(float(f['n_trials'])) == TRIALS and 0 < float(f['share']) <= 1 for f in freq)
    for m in SEARCHES:   # every trial's architecture has a cell with one op: each (method, r)'s op shares sum to >= 1
        for r in R_VALUES:
            assert sum(float(f['share']) for f in freq
                       if f['method'] == m and float(f['r']) == r and f['kind'] == 'op') >= 1
    nb = json.loads((study['tmp']/'architectures.ipynb').read_text())
    text = ''.join(''.join(o.get('text', '')) for c in nb['cells'] for o in c.get('outputs', []))
    assert 'share of trials using the Text modality' in text and 'most frequent' in text and '(d) mfas r = 1' in text

def test_runtime(study):
    print({k: round(v, 1) for k, v in study['secs'].items()})
    assert sum(study['secs'].values()) < 300

def test_viewbank_effect(study):
    "The comparison notebook pairs a sweep with itself: zero differences, and the BM-NAS check holds."
    out = study['tmp']/'vb_reports'
    csv_path = study['reports']/'r_sweep.csv'
    _execute('viewbank_effect', study['tmp'], live_csv=str(csv_path), bank_csv=str(csv_path), reports_dir=str(out))
    md = (out/'viewbank_effect.md').read_text()
    assert '| 0.2 |' in md and '+0.00' in md
    assert 'BM-NAS trials (no views) are identical in the two sweeps' in md
    rows = _csv(out/'viewbank_effect.csv')
    assert [float(r['r']) for r in rows] == R_VALUES and all(int(r['n_pairs']) == TRIALS for r in rows)

def test_notebooks_refuse_bad_data_before_any_trial(tmp_path):
    "A file `ssmnas_check` refuses, or a bench record that is not there, stops the sweep in its set-up cell: no trial."
    import h5py
    bad = make_synthetic_mmimdb(tmp_path/'bad.hdf5', n_samples=60, height=32, width=32)
    with h5py.File(bad, 'r+') as f: f['genres'][3] = 0
    with pytest.raises(papermill.PapermillExecutionError, match='genres: row 3 has no label'):
        _execute('r_sweep', tmp_path, **TINY, data_path=str(bad), reports_dir=str(tmp_path/'reports'),
                 runs_dir=str(tmp_path/'runs'))
    assert not (tmp_path/'runs').exists() and not (tmp_path/'reports').exists()
    with pytest.raises(papermill.PapermillExecutionError, match='bench_json: /nowhere/bench.json: no such file'):
        _execute('r_sweep', tmp_path, **TINY, data_path=str(bad), reports_dir=str(tmp_path/'reports'),
                 runs_dir=str(tmp_path/'runs'), bench_json='/nowhere/bench.json')
    assert not (tmp_path/'runs').exists() and not (tmp_path/'reports').exists()


def test_cpu_protocol_is_what_make_study_ran():
    "`ssmnas_run --protocol cpu` gives a trial exactly the settings the committed `make study` sweep ran with."
    import dataclasses
    from ssmnas.trial import _run_parser, configs_from_args, get_protocol
    rec = json.loads((REPO/'reports'/'r_sweep_protocol.json').read_text())
    parser, *options = _run_parser()
    args = parser.parse_args(['--data', 'x.hdf5', '--method', 'ssl', '--r', '0.1', '--out', 'o', '--protocol', 'cpu'])
    scfg, tcfg, mcfg = configs_from_args(args, *options)
    as_json = lambda c: json.loads(json.dumps(dataclasses.asdict(c)))
    assert rec['protocol'] == 'cpu'
    assert as_json(scfg) == rec['search_config'] and as_json(tcfg) == rec['train_config']
    assert as_json(mcfg) == rec['mfas_config']
    assert [float(r) for r in get_protocol('cpu').r_values] == rec['parameters']['r_values']
    assert get_protocol('cpu').trials == rec['parameters']['trials']
    # an option given on top of the protocol wins
    args = parser.parse_args(['--data', 'x.hdf5', '--method', 'ssl', '--r', '0.1', '--out', 'o', '--protocol', 'cpu',
                              '--C', '32'])
    assert configs_from_args(args, *options)[0].C == 32


def test_whole_study_record_sets_exp1_beside_the_bench(study, tmp_path, capsys):
    "scripts/study.py carries (and prints) the sweep's measured trial seconds beside the bench's extrapolation."
    import importlib.util
    spec = importlib.util.spec_from_file_location('study_script', REPO/'scripts'/'study.py')
    script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
    proto = study['reports']/'r_sweep_protocol.json'
    x = script.beside_extrapolation(proto)
    assert x == json.loads(proto.read_text())['extrapolation']
    out = capsys.readouterr().out
    assert f"Exp. 1, ssl: trials {x['measured_trial_s']['ssl']:.1f} s measured, " in out
    assert f"Exp. 1, {x['trials_read_back']} trials read back from an earlier run" in out
    (tmp_path/'first.json').write_text(json.dumps(study['first_protocol']))
    assert script.beside_extrapolation(tmp_path/'first.json')['estimate_s'] is None
    assert 'gives no estimate (measured at other settings' in capsys.readouterr().out
    (tmp_path/'none.json').write_text(json.dumps({'extrapolation': None}))
    assert script.beside_extrapolation(tmp_path/'none.json') is None

@pytest.mark.parametrize('args, says', [
    (['-p', 'trial', '10'], '-p trial: not a parameter of the experiment notebooks'),
    (['--protocol', 'gpu'], "unknown protocol 'gpu'"),
    (['--device', 'tpu'], "unknown device 'tpu'"),
    (['--workers', '0'], '--workers must be at least 1, got 0'),
    (['--workers', 'two'], "argument --workers: invalid int value: 'two' (--help lists the options)"),
    (['-p', 'workers', '2'], '-p workers: use --workers'),
    (['-p', 'bench_json', '/nowhere/bench.json'], '-p bench_json /nowhere/bench.json: no such file')])
def test_whole_study_command_refuses_bad_input(tmp_path, args, says):
    "scripts/study.py (make study) refuses a misspelt parameter, protocol, device or worker count in one line, first."
    import subprocess, sys
    data = tmp_path/'d.hdf5'; data.write_bytes(b'')
    res = subprocess.run([sys.executable, str(REPO/'scripts'/'study.py'), '--data', str(data), '--reports',
                          str(tmp_path/'reports'), *args], capture_output=True, text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1 and says in lines[0], res.stderr
    assert not (tmp_path/'reports').exists()


def test_whole_study_keeps_other_data_out_of_the_twins_reports(tmp_path, monkeypatch):
    "scripts/study.py on data other than the twin refuses the repository's reports/ before it writes or runs anything."
    import importlib.util, types
    from ssmnas.data import write_generic_example
    spec = importlib.util.spec_from_file_location('study_script', REPO/'scripts'/'study.py')
    script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
    def never(*a, **k): raise AssertionError('a notebook ran')
    monkeypatch.setitem(sys.modules, 'papermill', types.SimpleNamespace(execute_notebook=never))
    with pytest.raises(SystemExit) as e:
        script.main(['--data', str(write_generic_example(tmp_path/'own.h5')), '--reports', str(REPO/'reports')])
    assert "reports_dir: reports/ holds the synthetic twin's reports" in str(e.value.code)
    assert '(--reports FOLDER)' in str(e.value.code)


def test_trial_timings_script(tmp_path):
    "scripts/trial_timings.py: each trial's run.json timings as one CSV row, labelled by sweep; a bad folder refused."
    import subprocess, sys
    for sweep, method, t in (('a', 'ssl_r0.1_s3', 2.0), ('a', 'bmnas_r0.1_s3', 1.0), ('b', 'ssl_r0.1_s3', 0.5)):
        (tmp_path/sweep/method).mkdir(parents=True)
        (tmp_path/sweep/method/'run.json').write_text(json.dumps({'timings_s': {'search': t}}))
    handed = {'id': 'b0', 'build_s': 3.0, 'built_on': 'X'}          # its bank built by a task of its own
    (tmp_path/'b'/'ssl_r0.1_s3'/'run.json').write_text(json.dumps({'timings_s': {'search': 0.5},
                                                                   'view_bank_handed_over': handed}))
    (tmp_path/'b'/'ssl_r0.1_s3'/'search').mkdir()                   # its search resumed after an interruption
    (tmp_path/'b'/'ssl_r0.1_s3'/'search'/'run.json').write_text(json.dumps({'resumed_from_epoch': 1,
                                                                           'timings_s': {'epochs': 0.4}}))
    (tmp_path/'b'/'ssl_r0.1_s3'/'metrics.json').write_text(json.dumps({'n_search_rows': 7}))
    script, out = str(Path(__file__).parents[1]/'scripts'/'trial_timings.py'), tmp_path/'t.csv'
    subprocess.run([sys.executable, script, f'live={tmp_path/"a"}', f'bank={tmp_path/"b"}', '--methods', 'ssl',
                    '--out', str(out)], check=True, capture_output=True)
    got = [(r['sweep'], r['method'], r['seed'], float(r['search']), r['resumed'], r['bank_handed_over'],
            r['bank_build_s'], r['n_search_rows'], r['search_epochs']) for r in csv.DictReader(open(out))]
    assert got == [('live', 'ssl', '3', 2.0, '0', '', '', '', ''),
                   ('bank', 'ssl', '3', 0.5, '1', 'b0', '3.0', '7', '0.4')]
    bad = subprocess.run([sys.executable, script, str(tmp_path/'a'), '--out', str(out)], capture_output=True, text=True)
    assert bad.returncode != 0 and 'expected LABEL=FOLDER' in bad.stderr


def test_compare_sweeps_script(tmp_path):
    "scripts/compare_sweeps.py: per method, the paired F1 change over the trials both files hold; no file, refused."
    import subprocess, sys
    head = 'method,r,seed,weighted_f1\n'
    (tmp_path/'before.csv').write_text(head + 'ssl,0.1,0,0.30\nssl,0.1,1,0.40\nbmnas,0.1,0,0.20\nbmnas,0.1,1,0.20\n')
    (tmp_path/'after.csv').write_text(head + 'ssl,0.1,0,0.30\nssl,0.1,1,0.40\nbmnas,0.1,0,0.22\nbmnas,0.1,1,0.26\n'
                                      'bmnas,0.1,2,0.99\n')                  # a trial only one run has: left out
    script, out = str(Path(__file__).parents[1]/'scripts'/'compare_sweeps.py'), tmp_path/'c.csv'
    subprocess.run([sys.executable, script, str(tmp_path/'before.csv'), str(tmp_path/'after.csv'), '--out', str(out)],
                   check=True, capture_output=True)
    got = {r['method']: r for r in csv.DictReader(open(out))}
    assert (got['ssl']['n_changed'], float(got['ssl']['mean_diff'])) == ('0', 0.0)
    assert got['bmnas']['n_pairs'] == '2' and abs(float(got['bmnas']['mean_diff']) - 0.04) < 1e-9
    assert abs(float(got['bmnas']['largest_change']) - 0.06) < 1e-9
    assert float(got['bmnas']['t_low']) < 0.04 < float(got['bmnas']['t_high'])
    bad = subprocess.run([sys.executable, script, str(tmp_path/'nope.csv'), str(out), '--out', str(out)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and 'nope.csv: no such file' in bad.stderr
