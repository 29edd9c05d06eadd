"""Blur classifiers: one tile in, a :class:`~wsi_deblur.blur.BlurEstimate` out (names imported on first use)."""

from wsi_deblur.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {"BlurClassifier": "base", "ClassicalBlurClassifier": "classical",
                                       "directional_blur_widths": "classical"})
