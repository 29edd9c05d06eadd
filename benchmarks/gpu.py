"""GPU figures: each network's throughput, and `run --gpu` end to end on a LocalCluster with one GPU worker.

    python benchmarks/gpu.py [--out out/bench/gpu.json] [--budget-s 270]
    python benchmarks/gpu.py --device cpu --quick     # the same steps on the CPU, small (what the tests run)

1. **Networks.** Every shipped network (fast x3, dbmid x2, bcr, BlurNet) on
   640-px windows (a 512-px tile and its 64-px halo; BlurNet on its 256-px
   crops) of the built-in synthetic tissue: Mpx/s of the forward pass, inputs
   already on the device, for fp16 and bf16 (the CPU: fp32 and bf16 autocast),
   batch sizes, and channels-last or not; then, for `fast`'s DL_defocus at its
   best setting, the same forward pass replayed as a CUDA graph, and under
   ``torch.compile`` while the time budget allows. Target (#23): `fast`'s
   network >= 250 Mpx/s on an H100/H200 (100x DBMID's P40 figure).
2. **End to end.** A synthetic 20x slide with a large blurred area, `run --gpu`
   through the Python API on a LocalCluster of CPU workers (one per remaining
   core, single-threaded) plus one worker with ``--resources GPU=<slots>``
   and as many threads, so that reading, the guard and blending of one restore
   task overlap the network of another. Reports the restore stage's time, the
   GPU's busy share over it (``nvidia-smi`` sampled every 100 ms: the share of
   time a kernel was running), and where the time goes (task durations by
   kind and worker, from Dask's task stream). Target: busy >= 80%.

Without CUDA (and without ``--device cpu``) it says so and exits 0. Everything
stops starting new measurements once ``--budget-s`` is spent, so the whole
script fits in 5 minutes. Prints Markdown tables and writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: The networks measured: (label, restorer architecture or "blurnet", blur).
NETWORKS = (("fast DL_defocus", "fast", "defocus"), ("fast DL_motion", "fast", "motion"),
            ("fast DL_mixed", "fast", "mixed"), ("dbmid DL_defocus", "dbmid", "defocus"),
            ("dbmid DL_motion", "dbmid", "motion"), ("bcr", "bcr", "all"), ("BlurNet", "blurnet", ""))


class Budget:
    """Seconds left of the run's budget; measurements not started once it is spent are reported as skipped."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def load(arch: str, blur: str, device: str):
    """The network in fp32 on ``device`` (the precision is set per measurement)."""
    import torch

    if arch == "blurnet":
        from wsi_deblur.classify.neural import default_weights
        from wsi_deblur.nets.runtime import load_blurnet

        net, _ = load_blurnet(str(default_weights()))
        import copy

        return copy.deepcopy(net).to(device).float().eval()
    from wsi_deblur.nets.runtime import network_from_weights
    from wsi_deblur.restore.neural import default_weights as restorer_weights

    net, _ = network_from_weights(restorer_weights(arch, blur))
    return net.to(torch.device(device))


@lru_cache(maxsize=2)
def tissue_strip(size: int) -> np.ndarray:
    """Four ``size``-px squares of the built-in synthetic tissue side by side (rendered once)."""
    from wsi_deblur.synthetic import SyntheticSlide

    return SyntheticSlide((size, size * 4), tissue=False, seed=5).render(0, 0, size, size * 4)


def inputs(arch: str, blur: str, batch: int, device: str, dtype, channels_last: bool):
    """A batch of synthetic tissue windows on ``device`` and what the network is told beside them."""
    import torch

    size = 256 if arch == "blurnet" else 640
    field = tissue_strip(size)
    tiles = np.stack([field[:, (k % 4) * size:(k % 4 + 1) * size] for k in range(batch)])
    x = torch.from_numpy(tiles).to(device).permute(0, 3, 1, 2).to(dtype).div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    extra = ()
    if arch == "bcr":  # told the PSF: a 2-px defocus
        extra = (torch.tensor([[2.0, 0.0, 0.0]] * batch, device=device),)
    elif arch != "blurnet" and blur == "motion":  # directional: told the folded direction
        extra = (torch.full((batch,), 30.0, dtype=dtype, device=device),)
    return x, extra


def forward_seconds(net, x, extra, *, device: str, autocast_dtype=None, repeats: int = 5) -> float:
    """Median seconds of one forward pass (after two warm-up passes)."""
    import torch

    def once():
        autocast = (torch.autocast(device, dtype=autocast_dtype) if autocast_dtype is not None
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            return net(x, *extra)

    for _ in range(2):
        once()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        once()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def network_rows(device: str, quick: bool, budget: Budget) -> list[dict]:
    """Throughput of every network and setting (see the module)."""
    import torch

    precisions = ("fp16", "bf16") if device == "cuda" else ("fp32", "bf16")
    batches = (2,) if quick else (8, 32, 64)
    rows = []
    for label, arch, blur in NETWORKS[:2] + NETWORKS[-1:] if quick else NETWORKS:
        net = load(arch, blur, device)
        for precision in precisions:
            for batch in batches:
                for channels_last in (False, True):
                    row = {"network": label, "precision": precision, "batch": batch, "channels_last": channels_last}
                    rows.append(row)
                    if budget.left() < 30:
                        row["skipped"] = "time budget spent"
                        continue
                    model = net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
                    autocast = None
                    dtype = torch.float32
                    if device == "cuda":  # weights and inputs in the half type: what the GPU worker runs
                        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
                        model = model.to(dtype)
                    elif precision == "bf16":
                        autocast = torch.bfloat16
                    x, extra = inputs(arch, blur, batch, device, dtype, channels_last and arch != "bcr")
                    try:
                        seconds = forward_seconds(model, x, extra, device=device, autocast_dtype=autocast,
                                                  repeats=2 if quick else 5)
                    except RuntimeError as exc:  # out of memory at a large batch, an op without bf16
                        row["error"] = str(exc).splitlines()[0][:200]
                        if device == "cuda":
                            torch.cuda.empty_cache()
                        continue
                    finally:
                        net = model.float()
                    row["mpx_per_s"] = round(x.shape[0] * x.shape[2] * x.shape[3] / 1e6 / seconds, 1)
    return rows


def replay_rows(device: str, best: dict | None, budget: Budget) -> list[dict]:
    """`fast`'s DL_defocus at ``best`` setting as a CUDA graph and under torch.compile (CUDA only)."""
    import torch

    if device != "cuda" or best is None:
        return []
    rows = []
    dtype = torch.float16 if best["precision"] == "fp16" else torch.bfloat16
    net = load("fast", "defocus", device).to(dtype)
    if best["channels_last"]:
        net = net.to(memory_format=torch.channels_last)
    x, _ = inputs("fast", "defocus", best["batch"], device, dtype, best["channels_last"])
    mpx = x.shape[0] * x.shape[2] * x.shape[3] / 1e6
    try:
        with torch.inference_mode():
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):  # warm-up off the default stream, as capture wants
                for _ in range(3):
                    net(x)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                net(x)
            graph.replay()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(20):
                graph.replay()
            torch.cuda.synchronize()
        rows.append({**best, "mode": "CUDA graph", "mpx_per_s": round(20 * mpx / (time.perf_counter() - t0), 1)})
    except RuntimeError as exc:  # an op that cannot be captured: reported, not fatal
        rows.append({**best, "mode": "CUDA graph", "error": str(exc).splitlines()[0][:200]})
    if budget.left() < 120:
        rows.append({**best, "mode": "torch.compile", "skipped": "time budget spent"})
        return rows
    try:
        t0 = time.perf_counter()
        compiled = torch.compile(net)  # the default mode: max-autotune's search could outlast the budget
        seconds = forward_seconds(compiled, x, (), device=device)
        rows.append({**best, "mode": "torch.compile", "compile_s": round(time.perf_counter() - t0, 1),
                     "mpx_per_s": round(mpx / seconds, 1)})
    except Exception as exc:  # a compiler toolchain missing on the machine: reported, not fatal
        rows.append({**best, "mode": "torch.compile", "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
    return rows


class GpuSampler:
    """``nvidia-smi`` utilization every 100 ms in a thread: (time, percent busy) samples."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._proc = None
        self._thread = None

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                           "-lms", "100"], stdout=subprocess.PIPE, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                self.samples.append((time.time(), float(line.split(",")[0])))
            except ValueError:
                pass

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)

    def busy_share(self, start: float, stop: float) -> float | None:
        inside = [u for t, u in self.samples if start <= t <= stop]
        return round(float(np.mean(inside)) / 100, 3) if inside else None


def gpu_slide(folder: Path, size: int) -> Path:
    """A ``size``-px 20x slide whose middle third of rows is defocused and a band below it motion-blurred."""
    from wsi_deblur.synthetic import BlurRegion, SyntheticSlide

    path = folder / f"gpu-{size}.ome.tif"
    if not path.exists():
        third = size // 3 // 512 * 512
        regions = [BlurRegion(third, 0, 2 * third, size, "defocus", defocus_sigma_px=3.0),
                   BlurRegion(2 * third, 0, 2 * third + 1024, size, "motion", motion_length_px=21)]
        folder.mkdir(parents=True, exist_ok=True)
        SyntheticSlide((size, size), regions, tissue=False, seed=3).write(path, mpp=0.5, compression="jpeg",
                                                                          pyramid=True)
    return path


def end_to_end(device: str, quick: bool, work: Path, budget: Budget) -> dict:
    """`run --gpu` on a LocalCluster with one GPU worker (see the module)."""
    from dask.utils import key_split
    from distributed import LocalCluster, get_task_stream

    from wsi_deblur.pipeline.options import RunOptions
    from wsi_deblur.pipeline.scheduler import use_scheduler
    from wsi_deblur.pipeline.slide_job import process_slide

    if budget.left() < 90:
        return {"skipped": "time budget spent"}
    slide = gpu_slide(work / "slides", 2048 if quick else 8192)
    cores = os.cpu_count() or 2
    slots = 1 if quick else 4
    cpu_workers = max(1, cores - slots - 1)
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {})}
    out = work / "gpu-run"
    shutil.rmtree(out, ignore_errors=True)
    with LocalCluster(n_workers=cpu_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, env={"CUDA_VISIBLE_DEVICES": ""}) as cluster:  # CPU workers: no GPU
        gpu_worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                                       "--resources", f"GPU={slots}", "--nthreads", str(slots), "--no-dashboard",
                                       "--host", "127.0.0.1", "--name", "gpu-worker"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with use_scheduler(cluster.scheduler_address) as client:
                client.wait_for_workers(cpu_workers + 1, timeout=120)
                names = {a: w.get("name") for a, w in client.scheduler_info()["workers"].items()}
                with GpuSampler() as sampler, get_task_stream(client) as stream:
                    t0 = time.time()
                    result = process_slide(slide, out, RunOptions(gpu=True, tiff=False))
                    t1 = time.time()
        finally:
            gpu_worker.terminate()
            gpu_worker.wait(30)
    timings = result.summary["timings_s"]
    restore_start = t0 + timings["open_tissue_classify"]
    restore_stop = restore_start + timings["restore_write_zarr"]
    spent: dict[str, float] = {}
    for task in stream.data:
        where = "GPU worker" if names.get(task["worker"]) == "gpu-worker" else "CPU workers"
        for part in task["startstops"]:
            if part["action"] == "compute":
                kind = f"{key_split(task['key'])} ({where})"
                spent[kind] = spent.get(kind, 0.0) + part["stop"] - part["start"]
    restored = result.summary["restored_tiles"]
    return {"slide": str(slide), "size_px": result.summary["width_px"], "restored_tiles": restored,
            "cpu_workers": cpu_workers, "gpu_worker_slots": slots, "total_s": round(t1 - t0, 2),
            "stage_s": {k: round(v, 2) for k, v in timings.items()},
            "restored_mpx_per_s": round(restored * 512 * 512 / 1e6 / timings["restore_write_zarr"], 2),
            "gpu_busy_share_in_restore": sampler.busy_share(restore_start, restore_stop),
            "task_seconds": {k: round(v, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}}


def markdown(report: dict) -> str:
    lines = [f"device: {report['device']}", "", "| network | precision | batch | channels-last | Mpx/s |",
             "|---|---|---|---|---|"]
    for r in report["networks"] + report["replay"]:
        value = r.get("mpx_per_s", r.get("skipped") or r.get("error"))
        name = r["network"] if "mode" not in r else f"fast DL_defocus, {r['mode']}"
        lines.append(f"| {name} | {r['precision']} | {r['batch']} | {'yes' if r['channels_last'] else 'no'} | "
                     f"{value} |")
    e2e = report["end_to_end"]
    lines += ["", "end to end: " + json.dumps(e2e, indent=1)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes and few settings (a check of the script)")
    parser.add_argument("--budget-s", type=float, default=270.0, help="seconds after which nothing new starts")
    parser.add_argument("--work", type=Path, default=Path("out/bench/gpu"))
    parser.add_argument("--out", type=Path, default=Path("out/bench/gpu.json"))
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu.py: no CUDA device here; nothing measured (--device cpu runs the same steps on the CPU)")
        return 0
    budget = Budget(args.budget_s)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    networks = network_rows(args.device, args.quick, budget)
    fast = [r for r in networks if r["network"] == "fast DL_defocus" and "mpx_per_s" in r]
    best = max(fast, key=lambda r: r["mpx_per_s"]) if fast else None
    report = {"device": name, "torch": torch.__version__, "networks": networks,
              "replay": replay_rows(args.device, {k: best[k] for k in ("network", "precision", "batch",
                                                                        "channels_last")} if best else None, budget),
              "end_to_end": end_to_end(args.device, args.quick, args.work, budget)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
