"""Each trial's phase timings (`run.json`'s timings_s) of one or more sweep folders, as one CSV; `resumed` is 1
for a trial that took over a search an interrupted run had begun (its times leave that work out); a trial that drew
from a view bank a task of its own built (a banked Ray sweep) names it (`bank_handed_over`) and its build's seconds
(`bank_build_s`, in no trial's timings: count each bank once); a trial with a search adds its rows
(`n_search_rows`) and the search's own timings (`search_setup`, `search_epochs`, `search_validation`,
`search_epoch_end`: the trial's `search` less their sum is what the search did after its epochs).

    python scripts/trial_timings.py live=runs/r_sweep bank8=runs/r_sweep_bank8_10 --methods ssl bmnas --out t.csv
"""
import csv, json, re, sys
from pathlib import Path

from ssmnas.core import CliParser
from ssmnas.study import trial_resumed

TRIAL = re.compile(r'^(?P<method>[a-z_]+)_r(?P<r>[0-9.]+)_s(?P<seed>\d+)$')


def rows(label, folder, methods):
    for run in sorted(Path(folder).glob('*/run.json')):
        m = TRIAL.match(run.parent.name)
        if not m or (methods and m['method'] not in methods): continue
        rec = json.loads(run.read_text())
        bank = rec.get('view_bank_handed_over') or {}
        search = run.parent/'search'/'run.json'
        search = {f'search_{k}': v for k, v in json.loads(search.read_text()).get('timings_s', {}).items()
                  } if search.exists() else {}
        metrics = run.parent/'metrics.json'
        rows = {'n_search_rows': json.loads(metrics.read_text()).get('n_search_rows', '')} if metrics.exists() else {}
        yield ({'sweep': label, 'method': m['method'], 'r': float(m['r']), 'seed': int(m['seed']),
                'resumed': int(trial_resumed(run.parent, rec)), 'bank_handed_over': bank.get('id', ''),
                'bank_build_s': bank.get('build_s', '')} | rows | rec.get('timings_s', {}) | search)


def main(argv=None):
    p = CliParser(prog='trial_timings', allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('sweeps', nargs='+', metavar='LABEL=FOLDER')
    p.add_argument('--methods', nargs='*', default=None)
    p.add_argument('--out', required=True)
    a = p.parse_args(argv)
    found = []
    for spec in a.sweeps:
        label, _, folder = spec.partition('=')
        if not folder or not Path(folder).is_dir(): sys.exit(f'trial_timings: error: {spec}: expected LABEL=FOLDER')
        found += list(rows(label, folder, a.methods))
    if not found: sys.exit('trial_timings: error: no trial folders with a run.json')
    cols = list(dict.fromkeys(k for r in found for k in r))
    cols = [c for c in cols if not c.startswith('search_')] + [c for c in cols if c.startswith('search_')]
    with open(a.out, 'w', newline='') as f:
        w = csv.DictWriter(f, cols); w.writeheader(); w.writerows(found)
    print(f'wrote {a.out}: {len(found)} trials')


if __name__ == '__main__':
    main()
