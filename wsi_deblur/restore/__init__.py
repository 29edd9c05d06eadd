"""Restorers (classical or neural) and the engine that runs them over a slide (names imported on first use)."""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {"Restorer": "base", "WienerRestorer": "wiener", "wiener_deconvolve": "wiener"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"wsi_deblur.restore.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'wsi_deblur.restore' has no attribute {name!r}")
