"""Classifiers and restorers by name, as the CLI and options refer to them."""

from __future__ import annotations

from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.restore.base import Restorer


CLASSIFIERS = ("neural", "classical")


def make_classifier(name: str, *, threads: int = 1) -> BlurClassifier:
    """A blur classifier by name: ``neural`` (BlurNet, shipped weights) or ``classical``.

    ``threads``: CPU threads per call of a neural classifier (1 under Dask,
    which runs a task per core).
    """
    if name == "classical":
        from wsi_deblur.classify.classical import ClassicalBlurClassifier

        return ClassicalBlurClassifier()
    if name == "neural":
        from wsi_deblur.classify.neural import NeuralBlurClassifier

        return NeuralBlurClassifier(threads=threads)
    raise ValueError(f"unknown classifier {name!r}; available: {', '.join(CLASSIFIERS)}")


RESTORERS = ("fast", "dbmid", "wiener")


def make_restorer(name: str, *, device: str | None = None, threads: int = 1) -> Restorer:
    """A restorer by name.

    ``fast`` (default: the light networks, DBMID routing), ``dbmid`` (the
    paper's encoder-decoders, same routing) or ``wiener`` (classical
    deconvolution with the estimated PSF). ``device`` picks the torch device
    of the networks (default: CUDA when present, else CPU); ``threads`` their
    CPU threads per call (1 under Dask, which runs a task per core).
    """
    if name == "wiener":
        from wsi_deblur.restore.wiener import WienerRestorer

        return WienerRestorer()
    if name in ("fast", "dbmid"):
        from wsi_deblur.restore.neural import NeuralRestorer

        return NeuralRestorer(architecture=name, device=device, threads=threads)
    raise ValueError(f"unknown restorer {name!r}; available: {', '.join(RESTORERS)}")
