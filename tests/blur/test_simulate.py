import numpy as np
import pytest

from wsi_deblur.blur.simulate import (
    RANGES,
    BlurParams,
    Optics,
    add_sensor_noise,
    blur_psf,
    convolve_rgb,
    defocus_psf_optics,
    jpeg_roundtrip,
    sample_params,
    simulate,
)


def rms_radius(k):
    c = k.shape[0] // 2
    yy, xx = np.mgrid[:k.shape[0], :k.shape[1]] - c
    return float(np.sqrt((k * (yy ** 2 + xx ** 2)).sum()))


def test_psf_is_normalised_centred_and_symmetric():
    k = defocus_psf_optics(3.0)
    assert k.shape[0] == 3 and k.shape[1] == k.shape[2] and k.shape[1] % 2 == 1
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(k, k[:, ::-1, ::-1], atol=1e-9)
    focused = defocus_psf_optics(0.0)
    c = focused.shape[1] // 2
    assert all(np.unravel_index(ch.argmax(), ch.shape) == (c, c) for ch in focused)


def test_blur_grows_with_defocus_and_meets_geometric_optics():
    radii = [rms_radius(defocus_psf_optics(z)[1]) for z in (0.0, 1.0, 2.0, 4.0, 8.0)]
    assert radii == sorted(radii)
    optics = Optics()
    disc = 8.0 * np.tan(np.arcsin(optics.numerical_aperture)) / optics.mpp  # geometric blur-disc radius, px
    assert radii[-1] == pytest.approx(disc / np.sqrt(2), rel=0.15)


def test_higher_na_focuses_tighter():
    low = defocus_psf_optics(0.0, Optics(numerical_aperture=0.4, mpp=0.25))[1]
    high = defocus_psf_optics(0.0, Optics(numerical_aperture=0.95, mpp=0.25))[1]
    assert high.max() > low.max()


def test_motion_blur_spreads_a_point_along_its_direction():
    dot = np.zeros((101, 101, 3), np.float32)
    dot[50, 50] = 255
    psf = blur_psf(BlurParams("motion", defocus_um=0.0, motion_length_px=30, motion_angle_deg=90))
    out = convolve_rgb(dot, psf)[..., 1]
    rows = np.nonzero(out.max(axis=1) > out.max() * 0.2)[0]
    cols = np.nonzero(out.max(axis=0) > out.max() * 0.2)[0]
    assert 25 <= np.ptp(rows) + 1 <= 35 and np.ptp(cols) + 1 <= 5  # vertical streak


def test_noise_is_signal_dependent():
    rng = np.random.default_rng(0)
    dark = add_sensor_noise(np.full((200, 200, 3), 40.0), rng, photons=500, read_noise=0.0)
    bright = add_sensor_noise(np.full((200, 200, 3), 220.0), rng, photons=500, read_noise=0.0)
    assert bright.std() > 1.5 * dark.std()
    assert bright.std() == pytest.approx(np.sqrt(220 / 255 * 500) * 255 / 500, rel=0.1)


def test_jpeg_roundtrip_is_close():
    img = np.tile(np.linspace(0, 255, 64)[None, :, None], (64, 1, 3)).astype(np.uint8)
    assert np.abs(jpeg_roundtrip(img, 90).astype(int) - img).mean() < 2


@pytest.mark.parametrize("label", ["in_focus", "defocus", "motion", "mixed"])
def test_sampled_params_stay_in_range_and_simulate(label):
    rng = np.random.default_rng(1)
    p = sample_params(label, rng)
    assert p.label == label
    if label in ("defocus", "mixed"):
        assert p.defocus_um >= RANGES["defocus_um"][0]
    else:
        assert p.defocus_um <= RANGES["in_focus_defocus_um"][1]
    assert (p.motion_length_px >= 5) == (label in ("motion", "mixed"))
    img = np.random.default_rng(2).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    out = simulate(img, p, rng)
    assert out.shape == img.shape and out.dtype == np.uint8
