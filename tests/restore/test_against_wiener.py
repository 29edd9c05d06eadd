"""Every restorer at least as good as the classical one told the same facts, on tissue none of them learned.

Held-out pairs: four of the fields of ``../shared/data`` no network trained on (H&E and IHC;
``pipelines.blur_data.TEST_IMAGES``; skipped without it) blurred by the simulator
(:func:`wsi_deblur.blur.degrade.restore_pair`: pupil defocus at NA 0.5-0.95, motion, mixed, camera
noise, JPEG). Every restorer and the Wiener filter are told the pair's true blur, go through the
consistency guard as a run puts them, and are scored by SSIM to the sharp crop; the bar is the better
of Wiener with the disc PSF (the ``wiener`` restorer) and with the pupil PSF (the simulator's own).
"""

from itertools import islice

import numpy as np
import pytest

from pipelines.blur_data import TEST_IMAGES, load_field
from pipelines.evaluate_restorers import true_estimate
from wsi_deblur.blur.degrade import restore_pair
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.blur.fit import ssim_inner
from wsi_deblur.restore.by_name import RESTORERS, make_restorer
from wsi_deblur.restore.guard import GuardedRestorer
from wsi_deblur.restore.wiener import WienerRestorer

KINDS = ("defocus", "motion", "mixed")
#: The held-out fields the pairs are cut from (tissue-rich ones: H&E and IHC), and pairs per field and kind.
FIELDS = TEST_IMAGES[:4]
PAIRS_PER_FIELD = 3


@pytest.fixture(scope="module")
def pairs(shared_data) -> dict[str, tuple[np.ndarray, np.ndarray, list[BlurEstimate]]]:
    fields = [load_field(str(shared_data / name)) for name in FIELDS if (shared_data / name).exists()]
    if len(fields) < len(FIELDS):
        pytest.skip("the held-out fields are not all in ../shared/data")
    rng = np.random.default_rng(7)
    out = {}
    for kind in KINDS:
        made = []
        for field in fields:
            drawn = (restore_pair(field, 160, rng, kind) for _ in range(50))
            made += list(islice((pair for pair in drawn if pair is not None), PAIRS_PER_FIELD))
        blurred, sharp = np.stack([m[0] for m in made]), np.stack([m[1] for m in made])
        estimates = [true_estimate(BLUR_CLASSES.index(kind), p) for *_, p in made]
        out[kind] = (blurred, sharp, estimates)
    return out


def mean_ssim(restorer, blurred: np.ndarray, sharp: np.ndarray, estimates: list[BlurEstimate]) -> float:
    restored = GuardedRestorer(restorer, mpp=0.5).restore(blurred, estimates)
    return float(np.mean([ssim_inner(r, s, border=16) for r, s in zip(restored, sharp)]))


@pytest.fixture(scope="module")
def wiener_bar(pairs) -> dict[str, float]:
    return {kind: max(mean_ssim(WienerRestorer(psf_model=model), *pairs[kind]) for model in ("disc", "pupil"))
            for kind in KINDS}


#: Restorers known to fall short of the bar, and why: each a strict expected failure, so that the day one
#: passes the test says so. DBMID's DL_motion is blind to the direction (as in the paper) and had 1500 steps of
#: MSE; told the true blur Wiener is ahead on motion (0.535 against 0.426 here); 3000 more steps of l1+ssim
#: took it to 0.446 (not shipped; docs/real-defocus.md).
SHORT_OF_WIENER = {"dbmid": "DBMID's blind DL_motion restores motion less well than Wiener told the true blur"}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, raises=AssertionError,
                                                                            reason=SHORT_OF_WIENER[n]))
                                  if n in SHORT_OF_WIENER else n for n in RESTORERS if n != "wiener"])
def test_every_restorer_is_at_least_as_good_as_wiener_told_the_same_blur(pairs, wiener_bar, name):
    restorer = make_restorer(name, threads=2)
    for kind in KINDS:
        blurred, sharp, estimates = pairs[kind]
        got = mean_ssim(restorer, blurred, sharp, estimates)
        before = float(np.mean([ssim_inner(b, s, border=16) for b, s in zip(blurred, sharp)]))
        if name == "hybrid" and kind == "defocus":
            # hybrid's defocus *is* the `wiener` restorer (disc PSF), chosen on real blur (test_real_pair); on the
            # simulator's pupil defocus the disc is the wrong shape (docs/real-defocus.md)
            continue
        assert got > before, f"{name} on {kind}: {got:.3f}, blurred {before:.3f}"
        assert got >= wiener_bar[kind], f"{name} on {kind}: {got:.3f}, Wiener {wiener_bar[kind]:.3f}"
