"""Per method, the paired change in weighted F1 between two runs of the same sweep (two `r_sweep.csv` files, trials
matched by method, r and seed, pooled over r): `ssmnas.study.paired_differences`' mean, bootstrap and t intervals,
plus how many trials changed and the largest single change. Written as one CSV, in F1 fractions.

    python scripts/compare_sweeps.py before.csv after.csv --out reports/cpu_bf16/f1_change.csv
"""
import sys
from pathlib import Path

from ssmnas.core import CliParser
from ssmnas.study import read_csv, write_csv, paired_differences


def paired_changes(before:list, after:list) -> list:
    "One row per method of `after`: its after - before change over the trials both runs hold (rows as `read_csv`'s)."
    key = lambda row: (row['method'], float(row['r']), int(row['seed']))
    old = {key(row): float(row['weighted_f1']) for row in before}
    out = []
    for method in dict.fromkeys(row['method'] for row in after):
        pairs = [(old[key(row)], float(row['weighted_f1'])) for row in after
                 if row['method'] == method and key(row) in old]
        if len(pairs) < 2: continue
        # each matched trial a seed of one pooled r, so the per-r statistics cover the method's trials together
        rows = [{'method': label, 'r': 0.0, 'seed': i, 'weighted_f1': f1}
                for i, pair in enumerate(pairs) for label, f1 in zip(('before', 'after'), pair)]
        stats, = paired_differences(rows, a='after', b='before')
        out.append({'method': method, 'n_changed': sum(a != b for a, b in pairs),
                    'largest_change': max(abs(a - b) for a, b in pairs)} | {k: v for k, v in stats.items() if k != 'r'})
    return out


def main(argv=None):
    p = CliParser(prog='compare_sweeps', allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('before'); p.add_argument('after')
    p.add_argument('--out', required=True)
    a = p.parse_args(argv)
    for path in (a.before, a.after):
        if not Path(path).is_file(): sys.exit(f'compare_sweeps: error: {path}: no such file')
    rows = paired_changes(read_csv(a.before), read_csv(a.after))
    if not rows: sys.exit('compare_sweeps: error: the two files share no method with two or more trials')
    write_csv(a.out, rows, list(rows[0]))
    for r in rows:
        print(f"{r['method']}: {r['n_changed']} of {r['n_pairs']} trials changed, mean {100 * r['mean_diff']:+.2f} "
              f"[{100 * r['t_low']:+.2f}, {100 * r['t_high']:+.2f}], largest {100 * r['largest_change']:.2f} points")


if __name__ == '__main__':
    main()
