"""The evaluation's per-field breakdown against a reference computed by hand."""

import numpy as np
from skimage.metrics import structural_similarity as ssim

from pipelines.evaluate_restorers import gains_per_field, score
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.synthetic import SyntheticSlide


def test_gains_per_field_match_a_reference_and_skip_missing_types():
    rng = np.random.default_rng(0)
    field = SyntheticSlide((256, 256), tissue=False).render(0, 0, 256, 256)
    sharp = np.stack([field[y:y + 48, x:x + 48] for y, x in rng.integers(0, 200, (6, 2))])
    blurred = np.clip(sharp + rng.normal(0, 25, sharp.shape), 0, 255).astype(np.uint8)
    kinds = np.array([BLUR_CLASSES.index(k) for k in ("defocus", "motion", "defocus", "mixed", "motion", "in_focus")])
    fields = np.array([0, 0, 0, 1, 1, 1])
    # Field 0 restored perfectly; field 1 left as it was (gain 0).
    restored = np.where((fields == 0)[:, None, None, None], sharp, blurred)
    gain = score(restored, sharp)[0] - score(blurred, sharp)[0]

    rows = gains_per_field(gain, kinds, fields, ["a.png", "b.png", "never-sampled.png"])

    assert [r["field"] for r in rows] == ["a.png", "b.png"]
    loss = [1 - ssim(blurred[i], sharp[i], channel_axis=2) for i in range(6)]
    a, b = rows
    assert np.isclose(a["defocus"]["gain"], (loss[0] + loss[2]) / 2) and a["defocus"]["n"] == 2
    assert np.isclose(a["motion"]["gain"], loss[1]) and "mixed" not in a
    assert np.isclose(a["mean"], (a["defocus"]["gain"] + a["motion"]["gain"]) / 2)
    assert b["mixed"]["gain"] == 0 and b["motion"]["gain"] == 0 and b["mean"] == 0 and "defocus" not in b
