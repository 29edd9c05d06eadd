"""The fastest way to run each network on this CPU that keeps its output: fp32 or bf16, measured once per machine.

The CPUs these networks run on differ: with AMX or AVX-512 bf16, bf16
autocast runs ``fast`` 2-3x and BlurNet 2x faster than fp32; with AVX2 only,
10x slower. :func:`cpu_path` measures both on fixed images the first time a
network is loaded on a machine, keeps bf16 only where its output agrees with
fp32's and it is at least :data:`MIN_SPEEDUP` faster, and caches the choice
per CPU model and features, torch version and weights file in
``$WSI_DEBLUR_CACHE`` (default ``~/.cache/wsi-deblur``), so every later
process (and every worker of a cluster on that machine) takes the same path
without measuring. ``WSI_DEBLUR_CPU_PATH=fp32`` (or ``bf16``) forces one.

What "agrees" means depends on the network: a restorer's images within
:data:`MAX_MEAN_GREY_DIFFERENCE` grey levels on average and
:data:`MAX_GREY_DIFFERENCE` at most (:func:`image_agreement`); a classifier's
class probabilities within :data:`MAX_PROBABILITY_DIFFERENCE` and its severity
outputs within :data:`MAX_SEVERITY_DIFFERENCE` (:func:`logit_agreement`).

Processes of one machine measure one at a time (a lock beside the cache
file), so the workers of a cluster, which start together, measure undisturbed
and then all read the first one's choice: every worker runs a network alike.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from wsi_deblur.synthetic import SyntheticSlide

logger = logging.getLogger(__name__)

#: The CPU paths a network may run in (the first is the reference).
CPU_PATHS = ("fp32", "bf16")
#: bf16 is kept only if its output is within these of fp32's (grey levels of 0-255) ...
MAX_MEAN_GREY_DIFFERENCE = 0.5
MAX_GREY_DIFFERENCE = 4
#: A classifier's bf16 class probabilities within this of fp32's, its severity outputs (network units, about
#: 0.3 on average) within this (BlurNet on its 2000 held-out crops: 0.031 and 0.020 at most, accuracy 0.8855 in bf16
#: against 0.885; 0.05% of restore decisions change) ...
MAX_PROBABILITY_DIFFERENCE = 0.05
MAX_SEVERITY_DIFFERENCE = 0.05
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
    field = SyntheticSlide((512, 512), tissue=False, seed=11).render(0, 0, 512, 512)
    return np.stack([field[:256, :256], field[:256, 256:], field[256:, :256], field[256:, 256:]])


def image_agreement(fp32: np.ndarray, bf16: np.ndarray) -> dict:
    """How far two uint8 restorations are apart, and whether that is within the tolerance.

    Examples
    --------
    >>> image_agreement(np.full(4, 100, np.uint8), np.array([100, 101, 100, 99], np.uint8))["agrees"]
    True
    """
    diff = np.abs(bf16.astype(np.int16) - fp32.astype(np.int16))
    mean, most = float(diff.mean()), int(diff.max())
    return {"mean_grey_difference": mean, "max_grey_difference": most,
            "agrees": mean <= MAX_MEAN_GREY_DIFFERENCE and most <= MAX_GREY_DIFFERENCE}


def logit_agreement(fp32: np.ndarray, bf16: np.ndarray, *, n_classes: int = 4) -> dict:
    """How far two classifier outputs ``(n, n_classes + k)`` are apart (softmax probabilities of the first
    ``n_classes`` columns, the rest as they are), and whether that is within the tolerance.
    """

    def softmax(logits: np.ndarray) -> np.ndarray:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    dp = float(np.abs(softmax(fp32[:, :n_classes]) - softmax(bf16[:, :n_classes])).max())
    ds = float(np.abs(fp32[:, n_classes:] - bf16[:, n_classes:]).max()) if fp32.shape[1] > n_classes else 0.0
    return {"max_probability_difference": dp, "max_severity_difference": ds,
            "agrees": dp <= MAX_PROBABILITY_DIFFERENCE and ds <= MAX_SEVERITY_DIFFERENCE}


def measure(run: Callable[[np.ndarray, str], np.ndarray], *,
            agreement: Callable[[np.ndarray, np.ndarray], dict] = image_agreement) -> dict:
    """Agreement and speed of bf16 against fp32 on the check images (this machine's threads).

    ``run(images, precision)`` applies the network to ``(n, 256, 256, 3)`` uint8 images in ``precision``.
    """
    images = _check_images()
    out, seconds = {}, {}
    for path in CPU_PATHS:
        out[path] = run(images, path)  # warm-up on the same shapes: oneDNN builds its kernels per shape
        times = []
        for _ in range(2):  # the faster of two: one run can be slowed by another process
            t0 = time.perf_counter()
            run(images, path)
            times.append(time.perf_counter() - t0)
        seconds[path] = min(times)
    return {**agreement(out["fp32"], out["bf16"]), "speedup": seconds["fp32"] / seconds["bf16"]}


def choose(figures: dict) -> str:
    """``bf16`` where it agrees with fp32 and is at least :data:`MIN_SPEEDUP` faster, else ``fp32``.

    Examples
    --------
    >>> choose({"agrees": True, "speedup": 2.7})
    'bf16'
    >>> choose({"agrees": True, "speedup": 0.1})
    'fp32'
    """
    return "bf16" if figures["agrees"] and figures["speedup"] >= MIN_SPEEDUP else "fp32"


def cpu_path(run: Callable[[np.ndarray, str], np.ndarray], weights_sha256: str, *,
             agreement: Callable[[np.ndarray, np.ndarray], dict] = image_agreement) -> str:
    """The path (``fp32`` or ``bf16``) a network runs in on this CPU: forced, cached, or measured now and cached.

    ``run(images, precision)`` runs the network (see :func:`measure`); ``agreement`` judges its two outputs.
    """
    known = cached_cpu_path(weights_sha256)
    if known is not None:
        return known
    with _measuring_alone():  # the workers of a cluster start together: one measures, the others read its choice
        known = cached_cpu_path(weights_sha256)
        if known is not None:
            return known
        figures = measure(run, agreement=agreement)
        choice = choose(figures)
        shown = ", ".join(f"{k} {v:.3g}" for k, v in figures.items() if k not in ("agrees", "speedup"))
        logger.info("%s: %s on this CPU (bf16 %.1fx fp32; %s)", weights_sha256[:12], choice, figures["speedup"],
                    shown)
        _write_cache(_key(weights_sha256), choice)
    return choice


@contextlib.contextmanager
def _measuring_alone() -> Iterator[None]:
    """Hold an exclusive lock beside the cache file (no lock where the folder cannot be written or the
    system has no ``fcntl``): processes of one machine then measure one at a time, undisturbed, and agree.
    """
    try:
        import fcntl

        cache_file().parent.mkdir(parents=True, exist_ok=True)
        handle = open(cache_file().with_suffix(".lock"), "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
