"""Neural restoration routed by blur type, as DBMID: DL_defocus, DL_motion (and fast's DL_mixed), or bcr told the PSF.

in_focus windows come back untouched; defocus goes through DL_defocus; motion
through DL_motion; mixed, with the paper's ``dbmid`` networks, through
DL_motion then DL_defocus, and with the ``fast`` ones through DL_mixed, one
network trained from mixed blur to sharp (better than the chain on held-out
fields, at half its cost: see docs/models.md). A directional network (its config
says ``"directional": true``: ``fast``'s DL_motion and DL_mixed) sees each
window mirrored and/or transposed so that the estimated motion direction lies
in 0-45 degrees, and is told that direction
(:mod:`wsi_deblur.restore.direction_fold`). ``bcr`` is one network for
every blur type, told each window's estimated PSF (its defocus width and
motion length and direction: :mod:`wsi_deblur.restore.bcr`). Each process
loads each network once (cached), on CUDA in half precision when it has a GPU,
else on the CPU channels-last in fp32 or bf16 autocast, whichever
:mod:`wsi_deblur.cpu_path` found faster on this CPU without changing
the output (bf16 is 2-3x faster where the CPU has AMX, 10x slower where it has
only AVX2: docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.cpu_path import cpu_path
from wsi_deblur.restore.direction_fold import restore_folded
from wsi_deblur.restore.networks import ARCHITECTURES, build_network
from wsi_deblur.weights import file_sha256, resolve, restorer_weights_name, shipped_dir

logger = logging.getLogger(__name__)

#: DBMID's routes: the networks each blur type goes through, in order.
DBMID_ROUTES = {"in_focus": (), "defocus": ("defocus",), "motion": ("motion",), "mixed": ("motion", "defocus")}

#: The routes of each architecture: ``fast`` has a DL_mixed of its own; ``bcr`` one network for all, told the PSF.
ROUTES = {"dbmid": DBMID_ROUTES, "fast": {**DBMID_ROUTES, "mixed": ("mixed",)},
          "bcr": {"in_focus": (), "defocus": ("all",), "motion": ("all",), "mixed": ("all",)}}


def psf_conditions(estimates: Sequence[BlurEstimate]) -> np.ndarray:
    """What a network told the PSF (``bcr``) is told of each estimate: ``(n, 3)`` defocus std, length, direction.

    By the estimate's type: defocus widths for defocus and mixed, motion for
    motion and mixed, nothing for in focus (the training pairs' convention,
    :func:`wsi_deblur.training.batches.pair_psf`). Pixels as the estimate's.
    """
    rows = [(e.defocus_sigma_px if e.label in ("defocus", "mixed") else 0.0,
             e.motion_length_px if e.label in ("motion", "mixed") else 0.0,
             e.motion_angle_deg if e.label in ("motion", "mixed") else 0.0) for e in estimates]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 3)


def default_weights(architecture: str, blur: str) -> Path:
    """The shipped weights of ``architecture``'s DL_``blur`` network."""
    return shipped_dir() / restorer_weights_name(architecture, blur)


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when this process sees a GPU, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_device(device: str) -> None:
    """Raise ValueError unless ``device`` names a torch device this process has (``cpu``, ``cuda``, ``cuda:1``)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a torch device (cpu, cuda, cuda:0, ...)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: this machine has no CUDA GPU that torch can use")


def network_from_weights(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The network a safetensors file holds (never a pickle), fp32 on the CPU in eval mode, and its config.

    Raises ValueError for a file that is not one of our deblurring networks or is of an outdated kind.
    """
    with safe_open(str(path), framework="pt") as f:
        config = json.loads(dict(f.metadata() or {}).get("config", "{}"))
    if config.get("architecture") not in ARCHITECTURES:
        raise ValueError(f"{path}: not a deblurring network (config {config})")
    if "frame" in config:
        raise ValueError(f"{path}: weights for the rotated motion frame of earlier versions; "
                         "train them again (python -m pipelines.train_restorer)")
    net = build_network(config["architecture"], tuple(config["widths"]),
                        directional=bool(config.get("directional", False)),
                        width_uncertainty=float(config.get("width_uncertainty", 0.0)))
    net.load_state_dict(load_file(str(path)))
    net.eval()
    net.iterations = int(config.get("iterations", 1))
    return net, config


@lru_cache(maxsize=8)
def load_deblur_network(path: str, device: str = "cpu") -> torch.nn.Module:
    """A deblurring network in eval mode from a safetensors file (never a pickle), ready to run on ``device``.

    Cached per process: a worker loads each network once, not once per task.
    The network's ``directional`` attribute says whether it takes the motion
    direction (see :func:`run_network`); its ``iterations`` how many times
    its route applies it (1 unless its config says otherwise: adaptation by
    further degradation, :mod:`wsi_deblur.adaptation`, chooses it). On a GPU
    it runs in fp16, channels-last (bcr: rows contiguous, for its FFTs); on a
    CPU in the precision :mod:`wsi_deblur.cpu_path` chose for this machine.
    """
    net, config = network_from_weights(path)
    dev = torch.device(device)
    logger.info("%s: %s network for %s blur loaded on %s", path, config["architecture"], config.get("blur"), dev)
    psf_told = getattr(net, "conditioning", None) == "psf"
    if dev.type == "cuda":
        net = net.to(dev).half()
        return net if psf_told else net.to(memory_format=torch.channels_last)
    if not psf_told:
        net = net.to(memory_format=torch.channels_last)  # bcr: its FFTs want rows contiguous (it turns its own)
    extra = _check_inputs(net)
    net.cpu_precision = cpu_path(lambda images, precision: run_network(net, images, precision=precision, **{
        k: v[:len(images)] for k, v in extra.items()}), file_sha256(Path(path)))
    return net


def _check_inputs(net: torch.nn.Module) -> dict:
    """What ``net`` is given beside the four check images of :func:`wsi_deblur.cpu_path.measure`."""
    if getattr(net, "conditioning", None) == "psf":
        return {"psf": np.array([[2.0, 0, 0], [0, 15.0, 30.0], [2.0, 10.0, 60.0], [3.5, 0, 0]], np.float32)}
    if getattr(net, "directional", False):
        return {"angles_deg": np.array([10.0, 30.0, 60.0, 120.0])}
    return {}


def run_network(net: torch.nn.Module, images: np.ndarray, *, angles_deg: Sequence[float] | None = None,
                psf: np.ndarray | None = None, max_pixels: int = 2 ** 22, threads: int | None = None,
                precision: str | None = None) -> np.ndarray:
    """Apply ``net`` to ``(n, y, x, 3)`` uint8 images; uint8 of the same shape.

    A ``directional`` network works on each image folded by its motion
    direction, ``angles_deg`` (degrees counter-clockwise from x; 0, along x,
    when not given). A network told the PSF (``bcr``) needs ``psf``, ``(n, 3)``
    (:func:`psf_conditions`). Batches hold at most ``max_pixels`` pixels (at
    least one image each). ``threads`` sets torch's CPU threads for the call
    (default: leave as is). ``precision`` on the CPU: ``fp32`` or ``bf16``
    autocast; by default the network's ``cpu_precision``, chosen for this
    CPU when it was loaded (:mod:`wsi_deblur.cpu_path`).
    """
    param = next(net.parameters())
    if threads and param.device.type == "cpu":
        torch.set_num_threads(threads)
    h, w = images.shape[1:3]
    directional = getattr(net, "directional", False)
    told_psf = getattr(net, "conditioning", None) == "psf"
    if told_psf and (psf is None or len(psf) != len(images)):
        raise ValueError("a network told the PSF (bcr) needs one (defocus std, motion length, direction) per image")
    angles = np.zeros(len(images)) if angles_deg is None else np.asarray(angles_deg, dtype=np.float64)
    out = np.empty_like(images)
    per = max(1, max_pixels // (h * w))
    bf16 = param.device.type == "cpu" and (precision or getattr(net, "cpu_precision", "fp32")) == "bf16"
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(images), per):
            idx = slice(start, start + per)
            x = torch.from_numpy(np.require(images[idx], requirements=("C", "W")))  # a view if it can
            if param.device.type == "cuda":  # uint8 through pinned memory: a quarter of float's bytes, asynchronous
                x = x.pin_memory().to(param.device, non_blocking=True)
            x = x.permute(0, 3, 1, 2).to(param.dtype).div_(255.0)
            if not told_psf:
                x = x.contiguous(memory_format=torch.channels_last)
            if told_psf:
                y = net(x, torch.from_numpy(np.asarray(psf[idx], dtype=np.float32)).to(param.device))
            else:
                y = restore_folded(net, x, angles[idx]) if directional else net(x)
            y = y.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8)
            out[idx] = y.permute(0, 2, 3, 1).cpu().numpy()
    return out


@dataclass
class NeuralRestorer:
    """DBMID routing over a pair of trained networks.

    Parameters
    ----------
    architecture : {"fast", "dbmid", "bcr"}
        ``fast`` (the default, under 1/10 of DBMID's arithmetic), the DBMID
        paper's encoder-decoder, or ``bcr``, one network for every blur type
        told each window's estimated PSF (:mod:`wsi_deblur.restore.bcr`).
    device : str, optional
        A torch device; by default CUDA when the process has a GPU, else CPU.
    weights_dir : str, optional
        Folder holding ``deblur_<architecture>_<blur>.safetensors``; by
        default the weights shipped in the package.
    max_pixels : int
        Pixels per forward pass (bounds memory; about 2 kB per pixel for
        ``dbmid`` in fp32, a tenth of that for ``fast``).
    threads : int
        CPU threads per call. 1 in a slide run, where Dask already runs one
        task per core; it also makes every scheduler give the same bytes.
    chain_mixed : bool
        Route mixed blur through DL_motion then DL_defocus, as DBMID, even
        where the architecture has a DL_mixed (for comparison).
    fallback : bool
        A network ``weights_dir`` lacks loads the shipped weights (with a
        warning) instead of raising FileNotFoundError: what ``--weights``
        wants of a folder adapted for some networks only.
    """

    architecture: str = "fast"
    device: str | None = None
    weights_dir: str | None = None
    max_pixels: int = 2 ** 21
    threads: int = 1
    chain_mixed: bool = False
    fallback: bool = False

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown model {self.architecture!r}; available: {', '.join(ARCHITECTURES)}")
        if self.chain_mixed and self.architecture == "bcr":
            raise ValueError("bcr is one network for every blur type; it has no DL_motion and DL_defocus to chain")
        if self.device:
            check_device(self.device)

    @property
    def name(self) -> str:
        return self.architecture

    @property
    def routes(self) -> dict[str, tuple[str, ...]]:
        """The networks each blur type goes through, in order (see :data:`ROUTES`)."""
        return DBMID_ROUTES if self.chain_mixed else ROUTES[self.architecture]

    @property
    def networks(self) -> tuple[str, ...]:
        """The DL_ networks this restorer's routes use."""
        return tuple(dict.fromkeys(blur for route in self.routes.values() for blur in route))

    def network(self, blur: str) -> torch.nn.Module:
        """The DL_``blur`` network (one of :attr:`networks`), loaded once per process."""
        name = restorer_weights_name(self.architecture, blur)
        if self.fallback:
            path = resolve(name, self.weights_dir)
        else:
            path = Path(self.weights_dir) / name if self.weights_dir else default_weights(self.architecture, blur)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights not found")
        return load_deblur_network(str(path), str(pick_device(self.device)))

    def preload(self) -> None:
        """Load every network of the routes now (a worker does it once, at start)."""
        for blur in self.networks:
            self.network(blur)

    def restore_as(self, windows: np.ndarray, label: str, angles_deg: Sequence[float] | None = None, *,
                   psf: np.ndarray | None = None) -> np.ndarray:
        """Restore every window as blur type ``label`` (by that type's route, each network ``iterations`` times).

        ``angles_deg``: each window's motion direction (degrees), for a
        directional network; 0 (along x) when not given. ``psf``: each
        window's ``(defocus std, motion length, direction)``, for ``bcr``
        (:func:`psf_conditions`).
        """
        out = windows
        for blur in self.routes[label]:
            net = self.network(blur)
            for _ in range(getattr(net, "iterations", 1)):
                out = run_network(net, out, angles_deg=angles_deg, psf=psf, max_pixels=self.max_pixels,
                                  threads=self.threads)
        return out.copy() if out is windows else out

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        """Restore ``(n, y, x, 3)`` uint8 windows, each by the route of its estimate's label."""
        out = windows.copy()
        labels = np.array([e.label for e in estimates])
        angles = np.array([e.motion_angle_deg for e in estimates], dtype=np.float64)
        psf = psf_conditions(estimates)
        for label, route in self.routes.items():
            sel = np.flatnonzero(labels == label)
            if sel.size and route:
                out[sel] = self.restore_as(windows[sel], label, angles[sel], psf=psf[sel])
        return out
