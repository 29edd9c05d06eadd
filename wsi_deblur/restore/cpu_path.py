"""The fastest way to run each network on this CPU that keeps its output: fp32 or bf16, measured once per machine.

The CPUs these networks run on differ: with AMX or AVX-512 bf16, bf16
autocast runs ``fast`` 2-3x faster than fp32; with AVX2 only, 10x slower.
:func:`cpu_path` measures both on a fixed image the first time a network is
loaded on a machine, keeps bf16 only where its output agrees with fp32's
(mean difference at most :data:`MAX_MEAN_GREY_DIFFERENCE` grey levels, none
above :data:`MAX_GREY_DIFFERENCE`) and it is at least :data:`MIN_SPEEDUP`
faster, and caches the choice per CPU model and features, torch version and weights file
in ``$WSI_DEBLUR_CACHE`` (default ``~/.cache/wsi-deblur``), so every later
process (and every worker of a cluster on that machine) takes the same path
without measuring. ``WSI_DEBLUR_CPU_PATH=fp32`` (or ``bf16``) forces one.

The margins are wide on purpose: the measured ratio is about 2.7 or 0.1, never
near the threshold, so two processes measuring at once choose alike.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

#: The CPU paths a network may run in (the first is the reference).
CPU_PATHS = ("fp32", "bf16")
#: bf16 is kept only if its output is within these of fp32's (grey levels of 0-255) ...
MAX_MEAN_GREY_DIFFERENCE = 0.5
MAX_GREY_DIFFERENCE = 4
#: ... and it is at least this much faster.
MIN_SPEEDUP = 1.3


def cache_file() -> Path:
    """Where the choices are kept: ``$WSI_DEBLUR_CACHE/cpu-paths.json`` (default ``~/.cache/wsi-deblur``)."""
    root = os.environ.get("WSI_DEBLUR_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "wsi-deblur")
    return Path(root) / "cpu-paths.json"


#: CPU features that decide how fast bf16 runs (virtual machines often report one model name for all of them).
SPEED_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")


@lru_cache(maxsize=1)
def cpu_identity() -> str:
    """CPU model, its bf16-relevant features and the torch version: what a cached choice is valid for."""
    import platform

    import torch

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), model)
        flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    except OSError:
        pass
    features = "+".join(f for f in SPEED_FLAGS if f in flags) or "-"
    return f"{model} [{features}] | torch {torch.__version__}"


def _check_images() -> np.ndarray:
    """Four 256-px windows of the built-in synthetic tissue (the same on every machine)."""
    from wsi_deblur.synthetic import SyntheticSlide

    field = SyntheticSlide((512, 512), tissue=False, seed=11).render(0, 0, 512, 512)
    return np.stack([field[:256, :256], field[:256, 256:], field[256:, :256], field[256:, 256:]])


def measure(net, *, extra_inputs: dict | None = None) -> dict:
    """Agreement and speed of bf16 against fp32 for ``net`` on the check images (this machine's threads)."""
    from wsi_deblur.restore.neural import run_network

    images = _check_images()
    extra = extra_inputs or {}
    out, seconds = {}, {}
    for path in CPU_PATHS:
        run_network(net, images[:1], precision=path, **{k: v[:1] for k, v in extra.items()})  # warm-up
        t0 = time.perf_counter()
        out[path] = run_network(net, images, precision=path, **extra)
        seconds[path] = time.perf_counter() - t0
    diff = np.abs(out["bf16"].astype(np.int16) - out["fp32"].astype(np.int16))
    return {"mean_grey_difference": float(diff.mean()), "max_grey_difference": int(diff.max()),
            "speedup": seconds["fp32"] / seconds["bf16"]}


def choose(figures: dict) -> str:
    """``bf16`` where it agrees with fp32 and is at least :data:`MIN_SPEEDUP` faster, else ``fp32``.

    Examples
    --------
    >>> choose({"mean_grey_difference": 0.1, "max_grey_difference": 2, "speedup": 2.7})
    'bf16'
    >>> choose({"mean_grey_difference": 0.1, "max_grey_difference": 2, "speedup": 0.1})
    'fp32'
    """
    agrees = (figures["mean_grey_difference"] <= MAX_MEAN_GREY_DIFFERENCE
              and figures["max_grey_difference"] <= MAX_GREY_DIFFERENCE)
    return "bf16" if agrees and figures["speedup"] >= MIN_SPEEDUP else "fp32"


def cpu_path(net, weights_sha256: str, *, extra_inputs: dict | None = None) -> str:
    """The path (``fp32`` or ``bf16``) ``net`` runs in on this CPU: forced, cached, or measured now and cached."""
    known = cached_cpu_path(weights_sha256)
    if known is not None:
        return known
    figures = measure(net, extra_inputs=extra_inputs)
    choice = choose(figures)
    logger.info("%s: %s on this CPU (bf16 %.1fx fp32, mean difference %.2f grey levels, at most %d)", weights_sha256[:12],
                choice, figures["speedup"], figures["mean_grey_difference"], figures["max_grey_difference"])
    _write_cache(_key(weights_sha256), choice)
    return choice


def cached_cpu_path(weights_sha256: str) -> str | None:
    """The path forced by ``WSI_DEBLUR_CPU_PATH``, else the one chosen on this machine for these weights, if any.

    Raises ValueError for a forced path that is not one of :data:`CPU_PATHS`.
    """
    forced = os.environ.get("WSI_DEBLUR_CPU_PATH")
    if forced:
        if forced not in CPU_PATHS:
            raise ValueError(f"WSI_DEBLUR_CPU_PATH={forced!r} is not one of {', '.join(CPU_PATHS)}")
        return forced
    cached = _read_cache().get(_key(weights_sha256))
    return cached if cached in CPU_PATHS else None


def _key(weights_sha256: str) -> str:
    return f"{cpu_identity()} | {weights_sha256}"


def _read_cache() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, choice: str) -> None:
    """Add ``key`` to the cache file, atomically; an unwritable cache is only a debug line (it is measured again)."""
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**_read_cache(), key: choice}
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".cpu-paths.", delete=False) as f:
            json.dump(data, f, indent=1)
        os.replace(f.name, path)
    except OSError as exc:
        logger.debug("%s: cannot keep the CPU path choice (%s)", path, exc)
