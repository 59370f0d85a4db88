"""ruff's E501 (lines over the limit in pyproject.toml) on the given paths, except the first line of the `__all__` list
that nbdev writes into each exported module: nbdev wraps that list at 120 characters and then prefixes `__all__ = `,
so the line can be up to 10 characters longer, and the notebooks cannot change it. Exit 1 on any other long line.

    python scripts/line_limit.py ssmnas tests scripts
"""
import json, subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent


def long_lines(paths) -> list:
    "(file, row, length) of every E501 finding that is not nbdev's `__all__` line."
    res = subprocess.run([str(BIN/'ruff'), 'check', '--select', 'E501', '--exclude', 'ssmnas/_modidx.py',
                          '--output-format', 'json', *paths], capture_output=True, text=True)
    if res.returncode not in (0, 1): sys.exit(res.stderr.strip() or f'ruff failed ({res.returncode})')
    out = []
    for f in json.loads(res.stdout or '[]'):
        row = f['location']['row']
        line = Path(f['filename']).read_text().splitlines()[row - 1]
        if not line.startswith('__all__ = ['): out.append((f['filename'], row, len(line)))
    return out


if __name__ == '__main__':
    found = long_lines(sys.argv[1:] or ['ssmnas', 'tests', 'scripts'])
    for name, row, n in found:
        print(f'{Path(name).relative_to(Path.cwd()) if Path(name).is_absolute() else name}:{row}: '
              f'{n} characters (limit: pyproject.toml [tool.ruff] line-length)')
    sys.exit(1 if found else 0)
