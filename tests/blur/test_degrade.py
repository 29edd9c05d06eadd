"""Training pairs of the restorers: the disc defocus is the pupil's width in the real blur's shape."""

import numpy as np

from wsi_deblur.blur.degrade import disc_defocus_kernels, restore_pair
from wsi_deblur.blur.psf import psf_to_otf
from wsi_deblur.synthetic import SyntheticSlide


def _green_transfer(kernels: np.ndarray, size: int = 128) -> np.ndarray:
    return np.real(psf_to_otf(kernels[1], (size, size)))[0, : size // 2]


def test_the_disc_adds_the_width_asked_and_turns_its_transfer_negative():
    sharp, disc = disc_defocus_kernels(0.0, 0.75), disc_defocus_kernels(3.0, 0.75)
    var = lambda k: float((k * (np.arange(k.shape[0]) - k.shape[0] // 2)[None, :] ** 2).sum())  # noqa: E731
    assert abs(np.sqrt(var(disc[1]) - var(sharp[1])) - 3.0) < 0.15  # Gaussian-equivalent std added: 3 px
    assert _green_transfer(disc).min() < -0.08  # past its first zero, contrast inverts (the real pair: -0.15)


def test_pairs_without_disc_are_those_of_before_and_disc_pairs_change_only_the_blurred_half():
    field = SyntheticSlide((512, 512), tissue=False, seed=2).render(0, 0, 512, 512)
    before = restore_pair(field, 96, np.random.default_rng(7), "defocus")
    again = restore_pair(field, 96, np.random.default_rng(7), "defocus", disc=0.0)
    assert all(np.array_equal(a, b) for a, b in zip(before, again))
    disc = restore_pair(field, 96, np.random.default_rng(7), "defocus", disc=1.0)
    assert np.array_equal(disc[1], before[1]) and np.array_equal(disc[3], before[3])  # same crop and parameters
    assert not np.array_equal(disc[0], before[0])
    motion = restore_pair(field, 96, np.random.default_rng(8), "motion", disc=1.0)
    plain = restore_pair(field, 96, np.random.default_rng(8), "motion")
    assert all(np.array_equal(a, b) for a, b in zip(motion, plain))  # only defocus pairs change
