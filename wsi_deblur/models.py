"""Classifiers and restorers by name, as the CLI and options refer to them."""

from __future__ import annotations

from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.restore.base import Restorer


def make_classifier(name: str) -> BlurClassifier:
    """A blur classifier by name: ``classical``."""
    if name == "classical":
        from wsi_deblur.classify.classical import ClassicalBlurClassifier

        return ClassicalBlurClassifier()
    raise ValueError(f"unknown classifier {name!r}; available: classical")


def make_restorer(name: str) -> Restorer:
    """A restorer by name: ``wiener``."""
    if name == "wiener":
        from wsi_deblur.restore.wiener import WienerRestorer

        return WienerRestorer()
    raise ValueError(f"unknown restorer {name!r}; available: wiener")
