"""benchmarks/gpu.py: skips cleanly without CUDA, and its steps run (on the CPU) as they would on a GPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would measure")
def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "gpu.json")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "no CUDA device" in r.stdout and not (tmp_path / "gpu.json").exists()


def test_its_steps_run_on_the_cpu_with_restoration_on_the_gpu_worker(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--work", str(tmp_path),
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    measured = {row["network"] for row in report["networks"] if row.get("mpx_per_s", 0) > 0}
    assert measured == {"fast DL_defocus", "fast DL_motion", "BlurNet"}
    e2e = report["end_to_end"]
    assert e2e["restored_tiles"] > 0 and e2e["stage_s"]["restore_write_zarr"] > 0
    restore_where = {k for k in e2e["task_seconds"] if k.startswith("restore-windows")}
    assert restore_where == {"restore-windows (GPU worker)"}
    assert "| fast DL_defocus |" in r.stdout
