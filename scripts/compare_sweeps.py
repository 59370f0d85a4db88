"""Per method, the paired change in weighted F1 between two runs of the same sweep (two `r_sweep.csv` files, trials
matched by method, r and seed): mean, 95% t interval, largest single change. Written as one CSV.

    python scripts/compare_sweeps.py before.csv after.csv --out reports/cpu_bf16/f1_change.csv
"""
import argparse, csv, sys
from pathlib import Path

import numpy as np
from scipy import stats


def read_f1(path) -> dict:
    with open(path, newline='') as f:
        return {(r['method'], float(r['r']), int(r['seed'])): float(r['weighted_f1']) for r in csv.DictReader(f)}


def paired_changes(before:dict, after:dict) -> list:
    "One row per method: the after - before change in weighted F1 points over the trials both runs hold."
    rows = []
    for method in dict.fromkeys(k[0] for k in after):
        d = 100 * np.array([after[k] - before[k] for k in after if k[0] == method and k in before])
        if len(d) < 2: continue
        mean, sd = float(d.mean()), float(d.std(ddof=1))
        half = float(stats.t.ppf(0.975, len(d) - 1) * sd / np.sqrt(len(d)))
        rows.append({'method': method, 'n_trials': len(d), 'n_changed': int((d != 0).sum()), 'mean_change': mean,
                     't_low': mean - half, 't_high': mean + half, 'sd': sd, 'largest_change': float(np.abs(d).max())})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog='compare_sweeps', allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('before'); p.add_argument('after')
    p.add_argument('--out', required=True)
    a = p.parse_args(argv)
    for path in (a.before, a.after):
        if not Path(path).is_file(): sys.exit(f'compare_sweeps: error: {path}: no such file')
    rows = paired_changes(read_f1(a.before), read_f1(a.after))
    if not rows: sys.exit('compare_sweeps: error: the two files share no method with two or more trials')
    with open(a.out, 'w', newline='') as f:
        w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(rows)
    for r in rows:
        print(f"{r['method']}: {r['n_changed']} of {r['n_trials']} trials changed, mean {r['mean_change']:+.2f} "
              f"[{r['t_low']:+.2f}, {r['t_high']:+.2f}], largest {r['largest_change']:.2f} points")


if __name__ == '__main__':
    main()
