"""Restorers (classical or neural) and the engine that runs them over a slide (names imported on first use)."""

from wsi_deblur.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "Restorer": "base", "WienerRestorer": "wiener", "wiener_deconvolve": "wiener", "RESTORERS": "by_name",
    "make_restorer": "by_name"})
