"""Render nbs/index.ipynb to README.md: markdown cells as they are, code cells in python fences followed
by their kept text outputs (`#| echo: false` hides a cell's code, `#| output: asis` puts its output in as markdown).
(nbdev_readme does this through quarto, which cannot be installed offline.)

    python scripts/readme.py            # write README.md
    python scripts/readme.py --check    # exit 1 if README.md is not what index.ipynb renders to
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _text(x): return ''.join(x) if isinstance(x, list) else x

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    parts = []
    for cell in json.loads(Path(nb_path).read_text())['cells']:
        src = _text(cell['source']).strip('\n')
        if cell['cell_type'] == 'markdown': parts.append(src)
        elif cell['cell_type'] == 'code':
            flags = {l[2:].strip().replace(' ', '') for l in src.splitlines() if l.startswith('#|')}
            lines = [l for l in src.splitlines() if not l.startswith('#|')]
            if not lines or 'hide' in flags: continue
            if 'echo:false' not in flags: parts.append('```python\n' + '\n'.join(lines) + '\n```')
            out = ''.join(_text(o.get('text', '')) if o['output_type'] == 'stream'
                          else _text(o.get('data', {}).get('text/plain', ''))
                          for o in cell.get('outputs', []) if o['output_type'] in ('stream', 'execute_result'))
            if out.strip():
                parts.append(out.strip('\n') if 'output:asis' in flags else '```\n' + out.strip('\n') + '\n```')
    return '\n\n'.join(parts) + '\n'

def lost_shebangs(text:str) -> list:
    "Lines that begin '!/': a script's '#!' that a round trip through jupytext's percent format cut to '!'."
    return [l for l in text.splitlines() if l.startswith('!/')]

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if readme.read_text() != text:
            sys.exit('README.md differs from what nbs/index.ipynb renders to: run `make readme`')
        if lost_shebangs(text):
            sys.exit(f'nbs/index.ipynb: {lost_shebangs(text)[0]!r} lost its #: restore it in the notebook')
    else: readme.write_text(text)
