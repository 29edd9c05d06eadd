"""The simulator narrowed to a site: its measured noise and the defocus its blurred tiles show."""

import numpy as np
from scipy.ndimage import gaussian_filter

from wsi_deblur.adaptation.site_model import fit_site, photons_for_noise
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import sigma_px_for_defocus
from wsi_deblur.blur.simulate import add_sensor_noise
from wsi_deblur.synthetic import SyntheticSlide


def test_the_noise_of_the_sites_tiles_gives_back_the_photons_that_made_it():
    rng = np.random.default_rng(0)
    field = SyntheticSlide((512, 512), tissue=False).render(0, 0, 512, 512).astype(float)
    smooth = gaussian_filter(field, (3, 3, 0))  # structure the noise measure must see through
    tiles = np.stack([np.clip(np.rint(add_sensor_noise(smooth, rng, photons=5000.0, read_noise=1.0)), 0, 255)
                      .astype(np.uint8) for _ in range(3)])
    site = fit_site(tiles, [])
    assert site.photons[0] < 5000.0 < site.photons[1]
    assert site.defocus_um is None and site.numerical_aperture is None  # no blurred tile: the pipelines' range
    assert not site.rescale and not site.colour_jitter


def test_the_defocus_range_covers_what_blurnet_estimated():
    estimates = [BlurEstimate("defocus", defocus_sigma_px=sigma_px_for_defocus(z, 0.5)) for z in (2.0, 2.5, 3.0)]
    estimates.append(BlurEstimate("motion", motion_length_px=20))
    site = fit_site(np.zeros((0, 8, 8, 3), np.uint8), estimates)
    assert site.defocus_um[0] < 2.0 and 3.0 < site.defocus_um[1] < 4.5
    assert site.numerical_aperture == 0.75 and site.photons is None


def test_photons_for_noise_inverts_the_simulators_variance():
    level, photons = 180.0, 8000.0
    sigma = np.sqrt((level * 255.0 / photons + 1.0) / 3.0)
    assert abs(photons_for_noise(sigma, level) - photons) < 1e-6 * photons
