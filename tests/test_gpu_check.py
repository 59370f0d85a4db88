"""scripts/gpu_check.sh, the one script a GPU session runs: it refuses what would waste device time before it starts,
and its rehearsal on the CPU (GPU_CHECK_ON_CPU=1) runs the same commands end to end at a tiny size."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def gpu_check(tmp_path, *phases, **env):
    base = {k: v for k, v in os.environ.items() if k != 'GPU_CHECK_ON_CPU'}    # the rehearsal only when asked here
    env = {**base, 'OUT': str(tmp_path/'out'), 'SCRATCH': str(tmp_path/'scratch'), 'PYTHON': sys.executable, **env}
    return subprocess.run(['bash', str(REPO/'scripts'/'gpu_check.sh'), *phases], capture_output=True, text=True,
                          env=env, timeout=1500)


def test_misspelt_phase_refused_before_anything_runs(tmp_path):
    res = gpu_check(tmp_path, 'smoke', 'fusoin')
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [
        "gpu_check.sh: error: unknown phase 'fusoin' (all, smoke, full, full96, compile, fusion, hostbank, study, "
        "packing)"]
    assert not (tmp_path/'out').exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_no_cuda_refused_before_any_phase(tmp_path):
    res = gpu_check(tmp_path, 'smoke')
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().splitlines() == [
        'gpu_check.sh: error: torch sees no CUDA device (GPU_CHECK_ON_CPU=1 rehearses the phases on the CPU)']
    assert not (tmp_path/'out').exists() and not (tmp_path/'scratch').exists()


def test_a_failed_phase_fails_the_script(tmp_path):
    "Each phase runs even after one failed, and the script's exit status says a phase failed (and which)."
    fake = tmp_path/'python'           # this Python, except that every benchmark fails at once
    fake.write_text(f'#!/bin/sh\ncase "$*" in *ssmnas_bench*) echo "no bench today" >&2; exit 3 ;; esac\n'
                    f'exec "{sys.executable}" "$@"\n')
    fake.chmod(0o755)
    res = gpu_check(tmp_path, 'hostbank', GPU_CHECK_ON_CPU='1', PYTHON=str(fake))
    assert res.returncode == 1, res.stdout + res.stderr
    assert '== hostbank_device: exit 3' in res.stdout and '== hostbank_host: exit 3' in res.stdout
    assert res.stderr.strip().splitlines()[-1] == 'gpu_check.sh: failed: hostbank_host hostbank_device'


@pytest.mark.slow
def test_rehearsal_on_the_cpu(tmp_path):
    """The phase never run on a GPU (hostbank), as a GPU session runs it, on the CPU at a tiny size: both commands
    exit 0 and write their records (`make gpu-rehearsal` rehearses every phase)."""
    res = gpu_check(tmp_path, 'hostbank', GPU_CHECK_ON_CPU='1')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert '== hostbank_device: exit 0' in res.stdout and '== hostbank_host: exit 0' in res.stdout
    out = tmp_path/'out'
    host = json.loads(next((out/'hostbank'/'host').glob('fusion_cpu*_hostbank.json')).read_text())
    device = json.loads((out/'hostbank'/'device'/'fusion_cpu_custom.json').read_text())
    assert (host['size']['view_bank_on'], device['size']['view_bank_on']) == ('host', 'device')
    assert (host['device'], host['size']['height'], host['size']['C']) == ('cpu', 32, 16)   # the tiny size applied
    assert [r['batch_size'] for r in host['runs']] == [r['batch_size'] for r in device['runs']] == [256]
