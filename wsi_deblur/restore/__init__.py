"""Restorers (classical or neural) and the engine that runs them over a slide."""

from wsi_deblur.restore.base import Restorer
from wsi_deblur.restore.wiener import WienerRestorer, wiener_deconvolve

__all__ = ["Restorer", "WienerRestorer", "wiener_deconvolve"]
