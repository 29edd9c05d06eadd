"""Neural restoration routed by blur type, as DBMID: DL_defocus, DL_motion (and fast's DL_mixed), or bcr told the PSF.

in_focus windows come back untouched; defocus goes through DL_defocus; motion
through DL_motion; mixed, with the paper's ``dbmid`` networks, through
DL_motion then DL_defocus, and with the ``fast`` ones through DL_mixed, one
network trained from mixed blur to sharp (better than the chain on held-out
fields, at half its cost: see docs/models.md). A directional network (its config
says ``"directional": true``: ``fast``'s DL_motion and DL_mixed) sees each
window mirrored and/or transposed so that the estimated motion direction lies
in 0-45 degrees, and is told that direction
(:mod:`wsi_deblur.nets.direction_fold`). ``bcr`` is one network for
every blur type, told each window's estimated PSF (its defocus width and
motion length and direction: :mod:`wsi_deblur.nets.bcr`). The routes are
the registry's (:mod:`wsi_deblur.nets.registry`); loading and running a
network, :mod:`wsi_deblur.nets.runtime`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wsi_deblur.blur.classes import DEFOCUSED, MOVING
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.nets.files import resolve, restorer_weights_name, shipped_dir
from wsi_deblur.nets.registry import DBMID_ROUTES, network_spec
from wsi_deblur.nets.runtime import check_device, load_deblur_network, pick_device, run_network
from wsi_deblur.restore.wiener import WienerRestorer

#: The probability of its class a window needs to go through the networks; below it, through Wiener with its
#: estimate. The networks trust the estimate's type and PSF, and where BlurNet hesitates (the real 40x pair told
#: ``--mpp 0.5``: mixed 0.59 / defocus 0.41) DL_mixed took SSIM from 0.475 to 0.409, Wiener to 0.539
#: (``python -m pipelines.evaluate_real``); on held-out simulated motion and mixed blur it costs under 0.002
#: (``python benchmarks/network_confidence.py``).
NETWORK_CONFIDENCE = 0.8


def psf_conditions(estimates: Sequence[BlurEstimate]) -> np.ndarray:
    """What a network told the PSF (``bcr``) is told of each estimate: ``(n, 3)`` defocus std, length, direction.

    By the estimate's type: defocus widths for defocus and mixed, motion for
    motion and mixed, nothing for in focus (the training pairs' convention,
    :func:`wsi_deblur.training.batches.pair_psf`). Pixels as the estimate's.
    """
    rows = [(e.defocus_sigma_px if e.label in DEFOCUSED else 0.0,
             e.motion_length_px if e.label in MOVING else 0.0,
             e.motion_angle_deg if e.label in MOVING else 0.0) for e in estimates]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 3)


def default_weights(architecture: str, blur: str) -> Path:
    """The shipped weights of ``architecture``'s DL_``blur`` network."""
    return shipped_dir() / restorer_weights_name(architecture, blur)


@dataclass
class NeuralRestorer:
    """DBMID routing over a pair of trained networks.

    Parameters
    ----------
    architecture : {"fast", "dbmid", "bcr"}
        ``fast`` (the default, under 1/10 of DBMID's arithmetic), the DBMID
        paper's encoder-decoder, or ``bcr``, one network for every blur type
        told each window's estimated PSF (:mod:`wsi_deblur.nets.bcr`).
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
    min_confidence : float
        A window BlurNet is this sure is blurred, but less sure of its kind,
        goes to Wiener with its estimate instead of the networks
        (:data:`NETWORK_CONFIDENCE`; :meth:`unsure_of_kind`). 0: every window through the networks.
    """

    architecture: str = "fast"
    device: str | None = None
    weights_dir: str | None = None
    max_pixels: int = 2 ** 21
    threads: int = 1
    chain_mixed: bool = False
    fallback: bool = False
    min_confidence: float = NETWORK_CONFIDENCE

    def __post_init__(self) -> None:
        network_spec(self.architecture, "restorer")  # an OptionError naming the choices for an unknown one
        if self.chain_mixed and self.architecture == "bcr":
            raise ValueError("bcr is one network for every blur type; it has no DL_motion and DL_defocus to chain")
        if self.device:
            check_device(self.device)

    @property
    def name(self) -> str:
        return self.architecture

    @property
    def routes(self) -> dict[str, tuple[str, ...]]:
        """The networks each blur type goes through, in order (the registry's, :mod:`wsi_deblur.nets.registry`)."""
        return DBMID_ROUTES if self.chain_mixed else network_spec(self.architecture).routes

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

    def unsure_of_kind(self, estimate: BlurEstimate) -> bool:
        """BlurNet is sure the window is blurred but not of how: the networks, which trust the kind and the PSF,
        give way to Wiener. (Where it is not sure of blur at all, the networks' way of leaving sharp tissue
        alone is the safer one.)
        """
        m = self.min_confidence
        return estimate.label != "in_focus" and estimate.confidence < m and estimate.blur_probability >= m

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        """Restore ``(n, y, x, 3)`` uint8 windows, each by the route of its estimate's label (Wiener where
        BlurNet is unsure: :attr:`min_confidence`).
        """
        out = windows.copy()
        labels = np.array([e.label for e in estimates])
        angles = np.array([e.motion_angle_deg for e in estimates], dtype=np.float64)
        psf = psf_conditions(estimates)
        unsure = np.array([self.unsure_of_kind(e) for e in estimates], bool)
        for label, route in self.routes.items():
            sel = np.flatnonzero((labels == label) & ~unsure)
            if sel.size and route:
                out[sel] = self.restore_as(windows[sel], label, angles[sel], psf=psf[sel])
        if unsure.any():
            idx = np.flatnonzero(unsure)
            out[idx] = WienerRestorer().restore(windows[idx], [estimates[i] for i in idx])
        return out
