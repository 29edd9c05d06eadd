"""Blur classifiers: one tile in, a :class:`~wsi_deblur.blur.BlurEstimate` out (names imported on first use)."""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {"BlurClassifier": "base", "ClassicalBlurClassifier": "classical", "directional_blur_widths": "classical"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"wsi_deblur.classify.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'wsi_deblur.classify' has no attribute {name!r}")
