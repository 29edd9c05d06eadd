"""Blur classifiers by name, as the CLI and :class:`~wsi_deblur.pipeline.options.RunOptions` refer to them.

Examples
--------
>>> CLASSIFIERS
('neural', 'classical')
>>> make_classifier("classical").name
'classical'
"""

from __future__ import annotations

from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.classify.classical import ClassicalBlurClassifier
from wsi_deblur.errors import check_choice
from wsi_deblur.nets.files import CLASSIFIER_WEIGHTS, resolve

CLASSIFIERS = ("neural", "classical")


def make_classifier(name: str, *, threads: int = 1, weights_dir: str | None = None) -> BlurClassifier:
    """A blur classifier by name: ``neural`` (BlurNet) or ``classical``.

    ``threads``: CPU threads per call of a neural classifier (1 under Dask,
    which runs a task per core). ``weights_dir``: a folder written by
    ``wsi-deblur adapt``, whose BlurNet replaces the shipped one (the shipped
    one runs, with a warning, if it has none).
    """
    check_choice("classifier", name, CLASSIFIERS)
    if name == "classical":

        return ClassicalBlurClassifier()
    from wsi_deblur.classify.neural import NeuralBlurClassifier  # torch

    weights = str(resolve(CLASSIFIER_WEIGHTS, weights_dir)) if weights_dir is not None else None
    return NeuralBlurClassifier(weights=weights, threads=threads)
