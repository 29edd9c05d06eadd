"""The forward model fitted to a site: its noise and the defocus of its blurred tiles, measured on its own tiles.

The training pipelines draw degradations over every scanner (scales, stains,
noise from 1000 to 20000 photons, defocus adding 1.2-6 px); a site's slides
have one scale and stain, a noise level that can be measured on its in-focus
tiles (:func:`wsi_deblur.blur.fit.noise_sigma`), and blurred tiles whose
defocus BlurNet estimates. :func:`fit_site` narrows the simulator to that
(:class:`wsi_deblur.blur.degrade.SiteAcquisition`), so that simulated pairs
look like this scanner's tiles rather than any scanner's.
"""

from __future__ import annotations

import numpy as np

from wsi_deblur.blur.classes import DEFOCUSED
from wsi_deblur.blur.degrade import SiteAcquisition
from wsi_deblur.blur.estimated_psf import ASSUMED_NA, defocus_um_for_sigma
from wsi_deblur.blur.fit import noise_sigma

#: Read noise (grey levels) assumed when turning a measured noise into photons.
READ_NOISE = 1.0
#: Factor around the measured photons, and the defocus range's margin.
PHOTON_SPREAD = 2.0
DEFOCUS_MARGIN = 0.25
#: Defocus range allowed (micrometres).
DEFOCUS_LIMITS = (0.5, 8.0)


def photons_for_noise(sigma_grey: float, mean_level: float, *, read_noise: float = READ_NOISE) -> float:
    """Photons at full scale that give noise ``sigma_grey`` (of the grey mean of 3 channels) at ``mean_level``.

    Per channel the simulator's variance is ``level * 255 / photons + read_noise^2``;
    the mean of three independent channels has a third of it.

    Examples
    --------
    >>> round(photons_for_noise(1.0, 200.0))
    25500
    """
    excess = 3.0 * sigma_grey ** 2 - read_noise ** 2
    return float(mean_level * 255.0 / max(excess, 1e-3))


def fit_site(sharp: np.ndarray, estimates, *, mpp: float = 0.5) -> SiteAcquisition:
    """The site's acquisition from its in-focus windows ``(n, y, x, 3)`` and its blurred tiles' estimates.

    Photons: from the median noise and level of the in-focus windows, times
    1/2 to 2 (none: the pipelines' range). Defocus: from the 10th to the 90th
    percentile of the estimated defocus of blurred tiles, 25% wider (none
    when no tile is defocused), at the NA the defocus was converted with
    (:data:`wsi_deblur.blur.estimated_psf.ASSUMED_NA`): the simulated pairs
    then have the blur widths BlurNet measured.
    """
    photons = None
    if len(sharp):
        sigma = float(np.median([noise_sigma(w) for w in sharp]))
        level = float(np.median([w.mean() for w in sharp]))
        centre = float(np.clip(photons_for_noise(sigma, level), 500.0, 1e5))
        photons = (centre / PHOTON_SPREAD, centre * PHOTON_SPREAD)
    z = [e.defocus_um or defocus_um_for_sigma(e.defocus_sigma_px, mpp) for e in estimates
         if e.label in DEFOCUSED and (e.defocus_um or e.defocus_sigma_px)]
    defocus = None
    if z:
        lo, hi = np.percentile(z, [10, 90])
        defocus = (float(np.clip(lo * (1 - DEFOCUS_MARGIN), *DEFOCUS_LIMITS)),
                   float(np.clip(hi * (1 + DEFOCUS_MARGIN), *DEFOCUS_LIMITS)))
        if defocus[1] <= defocus[0]:
            defocus = (defocus[0], min(defocus[0] + 0.5, DEFOCUS_LIMITS[1]))
    return SiteAcquisition(photons=photons, defocus_um=defocus, numerical_aperture=ASSUMED_NA if defocus else None)
