"""Classifiers and restorers by name, as the CLI and options refer to them."""

from __future__ import annotations

from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.restore.base import Restorer


CLASSIFIERS = ("neural", "classical")


def make_classifier(name: str) -> BlurClassifier:
    """A blur classifier by name: ``neural`` (BlurNet, shipped weights) or ``classical``."""
    if name == "classical":
        from wsi_deblur.classify.classical import ClassicalBlurClassifier

        return ClassicalBlurClassifier()
    if name == "neural":
        from wsi_deblur.classify.neural import NeuralBlurClassifier

        return NeuralBlurClassifier()
    raise ValueError(f"unknown classifier {name!r}; available: {', '.join(CLASSIFIERS)}")


def make_restorer(name: str) -> Restorer:
    """A restorer by name: ``wiener``."""
    if name == "wiener":
        from wsi_deblur.restore.wiener import WienerRestorer

        return WienerRestorer()
    raise ValueError(f"unknown restorer {name!r}; available: wiener")
