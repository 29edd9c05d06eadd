"""Networks at run time: the device, loading from safetensors (never a pickle), precision per machine, running.

Each process loads each network once (cached), on CUDA in half precision when
it has a GPU, else on the CPU channels-last in fp32 or bf16 autocast, whichever
:mod:`wsi_deblur.nets.cpu_path` found faster on this CPU without changing the
output (bf16 is 2-3x faster where the CPU has AMX, 10x slower where it has only
AVX2: docs/benchmarks.md). A network is built from its weights file's config by
the class the registry names (:mod:`wsi_deblur.nets.registry`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from wsi_deblur.nets.cpu_path import cpu_path, logit_agreement
from wsi_deblur.nets.direction_fold import restore_folded
from wsi_deblur.nets.files import file_sha256, read_config
from wsi_deblur.nets.registry import network_spec

logger = logging.getLogger(__name__)


#: Largest feature width and number of levels a weights file's config may ask for (the shipped: 128 and 6).
MAX_WIDTH, MAX_LEVELS = 1024, 12


def _check_config_size(path: str | Path, config: dict) -> None:
    """Refuse a config that would allocate without bound (a width of 10^9 asks for terabytes)."""
    widths = config.get("widths") or []
    ok = isinstance(widths, list) and len(widths) <= MAX_LEVELS and all(
        isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= MAX_WIDTH for w in widths)
    if not ok:
        raise ValueError(f"{path}: its config asks for widths {str(widths)[:80]} (at most {MAX_LEVELS} levels of "
                         f"1-{MAX_WIDTH} features)")


def build_network(architecture: str, config: dict | None = None) -> nn.Module:
    """The registered network ``architecture`` (``fast``, ``dbmid``, ``bcr``, ``blurnet``), untrained.

    ``config``: what a weights file records (``widths``, ``directional``, ...); defaults where absent.
    """
    return network_spec(architecture).network_class().from_config(dict(config or {}))


def network_from_weights(path: str | Path, kind: str = "restorer") -> tuple[nn.Module, dict]:
    """The network a safetensors file holds, fp32 on the CPU in eval mode, and its config.

    A file without an ``architecture`` in its config is BlurNet's (the first
    classifiers were saved so). Raises ValueError naming the file for one that
    is not a network of ``kind``, or is of an outdated kind.
    """
    config = read_config(path)
    architecture = config.get("architecture", "blurnet" if kind == "classifier" else None)
    try:
        spec = network_spec(str(architecture), kind)
    except ValueError as exc:
        raise ValueError(f"{path}: not a {'deblurring' if kind == 'restorer' else 'blur classifier'} network "
                         f"(config {config})") from exc
    if "frame" in config:
        raise ValueError(f"{path}: weights for the rotated motion frame of earlier versions; "
                         "train them again (python -m pipelines.train_restorer)")
    _check_config_size(path, config)
    net = build_network(spec.name, config)
    try:
        net.load_state_dict(load_file(str(path)))
    except (RuntimeError, OSError) as exc:  # keys or shapes of another network; a truncated file
        raise ValueError(f"{path}: its tensors do not fit a {spec.name} network of config {config} "
                         f"({str(exc).splitlines()[0]})") from exc
    bad = [name for name, t in net.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:  # safetensors has no checksum: a damaged copy would give silent nonsense (a blurred slide passing QC)
        raise ValueError(f"{path}: {len(bad)} tensor(s) hold NaN or infinite values ({bad[0]}, ...); "
                         "the file is damaged")
    net.eval()
    net.iterations = int(config.get("iterations", 1))
    return net, config


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


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch's CPU threads set to ``n`` inside the block, restored after.

    A network's outputs (and a training run's weights) differ in their last
    bits with the thread count: work that must give the same result in any
    process (a resumed run against an uninterrupted one) fixes it.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=8)
def load_deblur_network(path: str, device: str = "cpu") -> torch.nn.Module:
    """A deblurring network in eval mode from a safetensors file (never a pickle), ready to run on ``device``.

    Cached per process: a worker loads each network once, not once per task.
    The network's ``directional`` attribute says whether it takes the motion
    direction (see :func:`run_network`); its ``iterations`` how many times
    its route applies it (1 unless its config says otherwise: adaptation by
    further degradation, :mod:`wsi_deblur.adaptation`, chooses it). On a GPU
    it runs in fp16, channels-last (bcr: rows contiguous, for its FFTs); on a
    CPU in the precision :mod:`wsi_deblur.nets.cpu_path` chose for this machine.
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
    """What ``net`` is given beside the four check images of :func:`wsi_deblur.nets.cpu_path.measure`."""
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
    CPU when it was loaded (:mod:`wsi_deblur.nets.cpu_path`).
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
            y = y.float()
            if not torch.isfinite(y).all():  # a damaged network must fail the tile, not write black
                raise ValueError(f"a {type(net).__name__} gave non-finite outputs; are its weights damaged?")
            y = y.clamp_(0, 1).mul_(255).round_().to(torch.uint8)
            out[idx] = y.permute(0, 2, 3, 1).cpu().numpy()
    return out


@lru_cache(maxsize=4)
def load_blurnet(path: str) -> tuple[nn.Module, dict]:
    """A BlurNet in eval mode on the CPU from a safetensors file (never a pickle), and its config."""
    net, config = network_from_weights(path, "classifier")
    logger.info("%s: BlurNet loaded", path)
    return net, config


def blurnet_logits(net: nn.Module, crops: np.ndarray, *, bf16: bool) -> np.ndarray:
    """``net``'s outputs ``(n, 8)`` for ``(n, y, x, 3)`` uint8 crops, on the network's device."""
    device = next(net.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float() / 255.0
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = net(x.contiguous(memory_format=torch.channels_last))
    return out.float().cpu().numpy()


@lru_cache(maxsize=4)
def blurnet_cpu_path(path: str) -> str:
    """The precision BlurNet ``path`` runs in on this CPU (measured once per machine: nets.cpu_path)."""
    net, _ = load_blurnet(path)
    return cpu_path(lambda images, precision: blurnet_logits(net, images, bf16=precision == "bf16"),
                    file_sha256(Path(path)), agreement=logit_agreement)


def network_conditions(net: nn.Module, n: int) -> tuple[torch.Tensor, ...]:
    """The extra inputs ``net`` takes for ``n`` images, for a speed or size measurement.

    A directional network: directions of 30 degrees; one told the PSF: defocus std 3 px with 20 px of motion at 30
    degrees; others: none.
    """
    if getattr(net, "conditioning", None) == "psf":
        return (torch.tensor([[3.0, 20.0, 30.0]]).repeat(n, 1),)
    if getattr(net, "directional", False):
        return (torch.full((n,), 30.0),)
    return ()


def macs_per_pixel(net: nn.Module, size: int = 256) -> float:
    """Multiply-accumulates per input pixel of every (transposed) convolution, counted on a ``size`` square."""
    total = 0.0

    def count(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):
            spatial = inputs[0].shape[-2] * inputs[0].shape[-1]
            total += spatial * k * module.in_channels * module.out_channels / module.groups
        else:
            total += output.shape[-2] * output.shape[-1] * k * module.in_channels * module.out_channels / module.groups

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    extra = network_conditions(net, 1)
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size), *extra)
    finally:
        for h in hooks:
            h.remove()
    return total / (size * size)
