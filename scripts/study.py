"""The whole study in one command: Exp. 1 (r_sweep), Exp. 2 (table3) and Fig. 4 (architectures), run in that order by
papermill with one parameter set, and the wall time of each written to `<reports>/study_run.json`.

    python scripts/study.py --data data/synthetic_mmimdb.hdf5                      # `make study`: the cpu protocol
    python scripts/study.py --data /data/multimodal_imdb.hdf5 --protocol paper --device cuda \
        --runs runs/paper --reports reports/paper -p image_weights /models/vgg19.pth

A killed run resumes (finished trials are read back). Needs papermill and ipykernel (`make wheelhouse` collects them
for a machine without internet).
"""
import json, platform, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ('r_sweep', 'table3', 'architectures')


def _value(text):
    "A -p value as papermill's -y would read it: JSON where it parses (numbers, lists, dicts, null), else the string."
    try: return json.loads(text)
    except json.JSONDecodeError: return text


def notebook_parameters() -> set:
    "Names set in the `parameters` cell of any of the experiment notebooks."
    names = set()
    for name in NOTEBOOKS:
        nb = json.loads((REPO/'nbs'/'experiments'/f'{name}.ipynb').read_text())
        for cell in nb['cells']:
            if 'parameters' in cell.get('metadata', {}).get('tags', []):
                names |= {line.split('=')[0].strip() for line in ''.join(cell['source']).splitlines()
                          if '=' in line and not line.startswith((' ', '#'))}
    return names


def parse(argv=None):
    from ssmnas.core import CliParser
    p = CliParser(prog='study', allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--data', required=True, help='the hdf5 file (or another supported layout) every notebook reads')
    p.add_argument('--protocol', default='cpu', help="'cpu' (make study) or 'paper'")
    p.add_argument('--device', default='auto')
    p.add_argument('--runs', default='runs', help='trial folders go to RUNS/r_sweep and RUNS/table3')
    p.add_argument('--reports', default='reports', help='reports and the executed notebooks (REPORTS/executed)')
    p.add_argument('-p', nargs=2, action='append', default=[], metavar=('NAME', 'VALUE'),
                   help='one more notebook parameter, e.g. -p trials 10 -p image_weights /models/vgg19.pth')
    p.add_argument('--workers', type=int, default=1,
                   help="Exp. 1's trials at once, each in a process of its own (make study: 2, for 2 cores)")
    p.add_argument('--kernel', default='python3')
    return p.parse_args(argv)


def main(argv=None):
    a = parse(argv)
    if not Path(a.data).is_file(): sys.exit(f'study: error: --data {a.data}: no such file')
    try: import papermill
    except ImportError: sys.exit("study: error: papermill is not installed "
                                 "(pip install papermill ipykernel, or from `make wheelhouse`)")
    from ssmnas.core import SsmnasError, pick_device
    from ssmnas.trial import get_protocol
    if a.workers < 1: sys.exit(f'study: error: --workers must be at least 1, got {a.workers}')
    try: get_protocol(a.protocol); pick_device(a.device)
    except SsmnasError as e: sys.exit(f'study: error: {e}')
    unknown = sorted({k for k, _ in a.p} - notebook_parameters())
    if unknown: sys.exit(f"study: error: -p {unknown[0]}: not a parameter of the experiment notebooks")
    if any(k == 'workers' for k, _ in a.p): sys.exit('study: error: -p workers: use --workers')
    bench = next((v for k, v in a.p if k == 'bench_json'), None)
    if bench and not Path(bench).is_file(): sys.exit(f'study: error: -p bench_json {bench}: no such file')
    from ssmnas.data import open_dataset
    from ssmnas.study import check_reports_dir
    try:
        with open_dataset(a.data) as data: check_reports_dir(data, a.reports, '--reports')   # before writing there
    except SsmnasError as e: sys.exit(f'study: error: {e}')
    runs, reports = Path(a.runs), Path(a.reports)
    (reports/'executed').mkdir(parents=True, exist_ok=True)
    common = {'data_path': str(a.data), 'protocol': a.protocol, 'device': a.device, 'reports_dir': str(reports)}
    common |= {k: _value(v) for k, v in a.p}
    per_notebook = {'r_sweep': {'runs_dir': str(runs/'r_sweep'), 'workers': a.workers},
                    'table3': {'runs_dir': str(runs/'table3'), 'sweep_runs_dir': str(runs/'r_sweep')},
                    'architectures': {'runs_dir': str(runs/'r_sweep')}}
    walls, t0 = {}, time.perf_counter()
    for name in NOTEBOOKS:
        print(f'== {name}', flush=True)
        t = time.perf_counter()
        papermill.execute_notebook(str(REPO/'nbs'/'experiments'/f'{name}.ipynb'),
                                   str(reports/'executed'/f'{name}.ipynb'), parameters=common | per_notebook[name],
                                   kernel_name=a.kernel, cwd=str(REPO))
        walls[name] = round(time.perf_counter() - t, 1)
        print(f'== {name}: {walls[name]} s', flush=True)
    total = round(time.perf_counter() - t0, 1)
    record = {'what': 'the whole study (Exp. 1, Exp. 2, Fig. 4), one command', 'parameters': common,
              'workers': a.workers, 'runs': str(runs),
              'wall_s': walls, 'total_wall_s': total, 'python': platform.python_version(), 'machine': platform.node()}
    try:
        import torch
        record['torch'] = torch.__version__
        record['gpu'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError: pass
    record['exp1_extrapolation'] = beside_extrapolation(reports/'r_sweep_protocol.json')
    (reports/'study_run.json').write_text(json.dumps(record, indent=1) + '\n')
    print(f'the whole study: {total} s ({total / 60:.1f} min); {reports/"study_run.json"}')


def beside_extrapolation(protocol_json) -> dict|None:
    """Exp. 1's measured trial seconds of the proposed method and BM-NAS beside what a bench record extrapolates them
    to (r_sweep.ipynb's `extrapolation`; None without a bench record of this device), printed."""
    from ssmnas.bench import extrapolation_lines
    x = json.loads(Path(protocol_json).read_text()).get('extrapolation')
    print('\n'.join(f'Exp. 1, {line}' for line in extrapolation_lines(x)) if x
          else 'Exp. 1: no bench record of this device to set its trial times beside')
    return x


if __name__ == '__main__':
    main()
