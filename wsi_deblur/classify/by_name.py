"""Blur classifiers by name, as the CLI and :class:`~wsi_deblur.pipeline.options.RunOptions` refer to them.

Examples
--------
>>> CLASSIFIERS
('neural', 'classical')
>>> make_classifier("classical").name
'classical'
"""

from __future__ import annotations

from pathlib import Path

from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.classify.classical import ClassicalBlurClassifier
from wsi_deblur.errors import check_choice
from wsi_deblur.nets.files import CLASSIFIER_WEIGHTS, read_threshold, resolve

CLASSIFIERS = ("neural", "classical")


def make_classifier(name: str, *, threads: int = 1, weights_dir: str | None = None,
                    blur_threshold: float | None = None, both_scales: bool = False) -> BlurClassifier:
    """A blur classifier by name: ``neural`` (BlurNet) or ``classical``.

    ``threads``: CPU threads per call of a neural classifier (1 under Dask,
    which runs a task per core). ``weights_dir``: a folder written by
    ``wsi-deblur adapt``, whose BlurNet replaces the shipped one (the shipped
    one runs, with a warning, if it has none), or by ``wsi-deblur calibrate``,
    whose threshold decides blurred-or-not. ``blur_threshold``: that
    threshold, given (wins over the folder's); neither: the most probable class. ``both_scales``: a
    finer scan's tiles judged at the working pixel size and at their own (BlurNet only).
    """
    check_choice("classifier", name, CLASSIFIERS)
    if name == "classical":

        return ClassicalBlurClassifier()
    from wsi_deblur.classify.neural import NeuralBlurClassifier  # torch

    calibrated = read_threshold(weights_dir)
    weights = None
    if weights_dir is not None and ((Path(weights_dir) / CLASSIFIER_WEIGHTS).is_file() or calibrated is None):
        weights = str(resolve(CLASSIFIER_WEIGHTS, weights_dir))  # says so when the shipped one runs
    return NeuralBlurClassifier(weights=weights, threads=threads, both_scales=both_scales,
                                blur_threshold=calibrated if blur_threshold is None else blur_threshold)
