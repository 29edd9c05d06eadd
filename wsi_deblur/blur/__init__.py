"""Blur models: point-spread functions and the blur categories we report."""

from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate, mean_direction_deg
from wsi_deblur.blur.psf import defocus_psf, motion_psf, psf_for

__all__ = ["BLUR_CLASSES", "BlurEstimate", "mean_direction_deg", "defocus_psf", "motion_psf", "psf_for"]
