"""Classifiers and restorers by name, as the CLI and options refer to them."""

from __future__ import annotations

from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.restore.base import Restorer


CLASSIFIERS = ("neural", "classical")


def make_classifier(name: str, *, threads: int = 1, weights_dir: str | None = None) -> BlurClassifier:
    """A blur classifier by name: ``neural`` (BlurNet) or ``classical``.

    ``threads``: CPU threads per call of a neural classifier (1 under Dask,
    which runs a task per core). ``weights_dir``: a folder written by
    ``wsi-deblur adapt``, whose BlurNet replaces the shipped one (the shipped
    one runs, with a warning, if it has none).
    """
    if name == "classical":
        from wsi_deblur.classify.classical import ClassicalBlurClassifier

        return ClassicalBlurClassifier()
    if name == "neural":
        from wsi_deblur.classify.neural import NeuralBlurClassifier
        from wsi_deblur.weights import CLASSIFIER_WEIGHTS, resolve

        weights = str(resolve(CLASSIFIER_WEIGHTS, weights_dir)) if weights_dir is not None else None
        return NeuralBlurClassifier(weights=weights, threads=threads)
    raise ValueError(f"unknown classifier {name!r}; available: {', '.join(CLASSIFIERS)}")


RESTORERS = ("fast", "dbmid", "bcr", "wiener")


def make_restorer(name: str, *, device: str | None = None, threads: int = 1,
                  weights_dir: str | None = None) -> Restorer:
    """A restorer by name.

    ``fast`` (default: the light networks, DBMID routing), ``dbmid`` (the
    paper's encoder-decoders, same routing), ``bcr`` (one network, learned
    deconvolution in the Fourier domain told each window's estimated PSF,
    after m-rBCR) or ``wiener`` (classical deconvolution with the estimated
    PSF). ``device`` picks the torch device
    of the networks (default: CUDA when present, else CPU); ``threads`` their
    CPU threads per call (1 under Dask, which runs a task per core).
    ``weights_dir``: a folder written by ``wsi-deblur adapt``; each network
    it holds replaces the shipped one, the others stay shipped (with a
    warning naming them).
    """
    if name == "wiener":
        from wsi_deblur.restore.wiener import WienerRestorer

        return WienerRestorer()
    if name in ("fast", "dbmid", "bcr"):
        from wsi_deblur.restore.neural import NeuralRestorer

        return NeuralRestorer(architecture=name, device=device, threads=threads, weights_dir=weights_dir,
                              fallback=weights_dir is not None)
    raise ValueError(f"unknown restorer {name!r}; available: {', '.join(RESTORERS)}")
