"""Blur classifiers: one tile in, a :class:`~wsi_deblur.blur.BlurEstimate` out."""

from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.classify.classical import ClassicalBlurClassifier, directional_blur_widths

__all__ = ["BlurClassifier", "ClassicalBlurClassifier", "directional_blur_widths"]
