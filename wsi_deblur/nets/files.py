"""Which weights file each network loads: the shipped ones, or a facility's adapted ones.

``wsi-deblur adapt`` writes a folder of safetensors under the shipped names
(``blur_classifier.safetensors``, ``deblur_fast_defocus.safetensors``, ...);
``--weights DIR`` (``RunOptions.weights``) makes every network load its file
from there, and a network the folder lacks falls back to the shipped file,
with one warning per process naming it. Nothing here loads a network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from wsi_deblur.errors import OptionError
from wsi_deblur.nets.provenance import sha256_of
from wsi_deblur.nets.registry import NETWORKS, architecture_of_file, network_spec

logger = logging.getLogger(__name__)

#: What ``adapt`` writes beside the weights: the figures (and ``adaptation.md``, the card).
ADAPTATION_REPORT = "adaptation.json"
#: File name of BlurNet's weights.
CLASSIFIER_WEIGHTS = NETWORKS["blurnet"].weights_name()
#: The architecture whose DL_ networks ``wsi-deblur adapt`` fine-tunes (with BlurNet).
ADAPTED_ARCHITECTURE = "fast"


def adapted_weights_names() -> tuple[str, ...]:
    """The network files an ``adapt`` folder may hold: BlurNet's, then each DL_ network of the adapted architecture.

    Examples
    --------
    >>> adapted_weights_names()[:2]
    ('blur_classifier.safetensors', 'deblur_fast_defocus.safetensors')
    """
    spec = network_spec(ADAPTED_ARCHITECTURE)
    return (CLASSIFIER_WEIGHTS, *(spec.weights_name(n) for n in spec.networks))


#: A site's blurred-or-not threshold, written by ``wsi-deblur calibrate`` (:mod:`wsi_deblur.adaptation.calibration`).
DETECTION_FILE = "detection.json"


def restorer_weights_name(architecture: str, blur: str) -> str:
    """File name of ``architecture``'s DL_``blur`` network (as the registry declares it).

    Examples
    --------
    >>> restorer_weights_name("dbmid", "motion")
    'deblur_dbmid_motion.safetensors'
    """
    return network_spec(architecture, "restorer").weights_name(blur)


def shipped_dir() -> Path:
    """The folder of the weights shipped in the package."""
    return Path(str(resources.files("wsi_deblur") / "models"))


def check_weights_dir(weights_dir: str | Path) -> Path:
    """``weights_dir`` as a Path, after checking it is a folder ``adapt`` or ``calibrate`` wrote (its report, its
    calibration, or a network of ours).

    A folder whose card says no network was kept is valid: every network is then the shipped one.

    Every network file in it is opened and checked now, once, rather than
    failing every slide of a batch: a regular file, a safetensors header, the
    architecture its name says, tensors that fit it, finite values
    (:func:`~wsi_deblur.nets.runtime.network_from_weights`; loads torch).

    Raises :class:`~wsi_deblur.errors.OptionError` naming the folder or file otherwise (before any work starts).
    """
    path = Path(weights_dir)
    if not path.is_dir():
        raise OptionError(f"{path}: --weights needs a folder written by `wsi-deblur adapt`, and this is not a folder")
    own = (path / ADAPTATION_REPORT).is_file() or (path / DETECTION_FILE).is_file()
    if not own and not any(_is_ours(p.name) for p in path.glob("*.safetensors")):
        raise OptionError(f"{path}: no {ADAPTATION_REPORT}, {DETECTION_FILE}, blur_classifier.safetensors or "
                          "deblur_*.safetensors in it; is it a folder written by `wsi-deblur adapt` or "
                          "`wsi-deblur calibrate`?")
    read_threshold(path)  # a damaged calibration is refused now
    for file in sorted(path.glob("*.safetensors")):
        if architecture_of_file(file.name) is not None:
            info = file.lstat()  # checked once per file as it is (the CLI and RunOptions both ask)
            _check_network_file(str(file), info.st_mtime_ns, info.st_size)
    return path


@lru_cache(maxsize=64)
def _check_network_file(file: str, mtime_ns: int, size: int) -> None:
    """Refuse (OptionError) a network file of ours that would fail (or hang) when loaded."""
    from wsi_deblur.nets.runtime import network_from_weights  # deferred: torch

    path = Path(file)
    spec, _ = architecture_of_file(path.name)
    try:
        config = read_config(path)
        if config.get("architecture", "blurnet") != spec.name:
            raise ValueError(f"{path}: holds a {config.get('architecture', 'blurnet')} network, but its name is "
                             f"that of a {spec.name} network")
        network_from_weights(path, spec.kind)
    except ValueError as exc:
        raise OptionError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from exc


def _is_ours(name: str) -> bool:
    return architecture_of_file(name) is not None or name.startswith("deblur_")


def resolve(name: str, weights_dir: str | Path | None = None) -> Path:
    """The file to load for the network named ``name``: ``weights_dir``'s if it has one, else the shipped one.

    A fallback is logged once per process and folder ("... has no ...; the shipped one runs").
    """
    if weights_dir is not None:
        own = Path(weights_dir) / name
        if own.is_file():
            return own
        _warn_fallback(str(weights_dir), name)
    return shipped_dir() / name


def _warn_fallback(weights_dir: str, name: str) -> None:
    """Say once per folder which of the networks ``adapt`` writes it lacks (one line, not one per network)."""
    adapted = adapted_weights_names()
    if name in adapted:
        _warn_folder_fallback(weights_dir, adapted)
    else:
        _warn_file_fallback(weights_dir, name)


@cache
def _warn_folder_fallback(weights_dir: str, names: tuple[str, ...]) -> None:
    missing = [n for n in names if not (Path(weights_dir) / n).is_file()]
    logger.warning("%s has no %s; the shipped %s", weights_dir, ", ".join(missing),
                   "one runs" if len(missing) == 1 else "ones run")


@cache
def _warn_file_fallback(weights_dir: str, name: str) -> None:
    logger.warning("%s has no %s; the shipped %s runs", weights_dir, name, name)


def weights_record(names: list[str], weights_dir: str | Path | None = None) -> dict[str, dict[str, str]]:
    """For each network file name, where it came from (``adapted`` or ``shipped``), its path and sha256."""
    out = {}
    for name in names:
        path = resolve(name, weights_dir)
        out[name] = {"source": "shipped" if path.parent == shipped_dir() else "adapted", "path": str(path),
                     "sha256": _cached_sha(str(path), path.stat().st_mtime_ns)}
    return out


@lru_cache(maxsize=64)
def _cached_sha(path: str, mtime_ns: int) -> str:
    return sha256_of(Path(path))


def file_sha256(path: Path) -> str:
    """sha256 of a weights file, computed once per file and modification time in a process."""
    return _cached_sha(str(path), path.stat().st_mtime_ns)


def weights_digest(weights_dir: str | Path | None = None) -> str:
    """A short digest of every network file a run could load (shipped, and those of ``weights_dir``)."""
    digest = hashlib.sha256()
    folders = [shipped_dir()] + ([Path(weights_dir)] if weights_dir is not None else [])
    for folder in folders:
        for path in sorted(folder.glob("*.safetensors")):
            if not path.is_file():  # a FIFO or a device would block the read; no network loads it
                continue
            digest.update(path.name.encode() + _cached_sha(str(path), path.stat().st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def read_config(path: str | Path) -> dict[str, Any]:
    """The config a weights file records (``architecture``, ``widths``, ...), read from its safetensors header.

    Never unpickles anything. Raises ValueError naming the file for one that
    is not a regular file (a FIFO or a device would block the reader) or
    whose header is not a safetensors one with a JSON config.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        regular = stat.S_ISREG(path.stat().st_mode)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the weights file ({exc.strerror or exc})") from exc
    if not regular:
        raise ValueError(f"{path}: not a regular file; a weights file is a .safetensors file")
    try:
        with safe_open(str(path), framework="pt") as f:
            config = json.loads(dict(f.metadata() or {}).get("config", "{}"))
    except Exception as exc:  # safetensors raises its own SafetensorError for a bad header
        raise ValueError(f"{path}: not a safetensors weights file ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: its config is not a JSON object")
    return config


def save_network(net: Any, path: str | Path, architecture: str, **extra: Any) -> dict[str, Any]:
    """Write ``net``'s weights to ``path`` as safetensors, with the config that builds it again; returns that config.

    The config is ``{"architecture": ..., **net.config(), **extra}`` (``blur``,
    ``iterations``, ``adapted``, ...): what :func:`wsi_deblur.nets.runtime.network_from_weights` reads.
    """
    from safetensors.torch import save_file

    config = {"architecture": network_spec(architecture).name, **net.config(), **extra}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
              metadata={"config": json.dumps(config), "format": "pt"})
    os.chmod(path, 0o666 & ~_umask())  # safetensors writes 0600: workers run by another user could not read it
    return config


def _umask() -> int:
    """The process's file-creation mask (read without changing it for longer than the call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_threshold(weights_dir: str | Path | None) -> float | None:
    """The calibrated threshold a weights folder holds (``detection.json``), or None.

    Raises :class:`~wsi_deblur.errors.OptionError` for a damaged file.
    """
    found = read_calibration(weights_dir)
    return None if found is None else found[0]


def read_calibration(weights_dir: str | Path | None) -> tuple[float, bool] | None:
    """``(threshold, both_scales)`` of the calibration a weights folder holds, or None.

    ``both_scales``: whether the threshold was set on probabilities of both scales
    (``calibrate --both-scales``; calibrations written before that option: one scale).
    Raises :class:`~wsi_deblur.errors.OptionError` for a damaged file.
    """
    if weights_dir is None:
        return None
    path = Path(weights_dir) / DETECTION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        t = float(record["threshold"])
        both = record.get("options", {}).get("both_scales", False)
        if not isinstance(both, bool):
            raise TypeError(f"options.both_scales is {both!r}, not true or false")
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise OptionError(f"{path}: not a calibration `wsi-deblur calibrate` wrote ({exc})") from exc
    if not 0.0 < t < 1.0:
        raise OptionError(f"{path}: threshold {t} is not a probability between 0 and 1")
    return t, both
