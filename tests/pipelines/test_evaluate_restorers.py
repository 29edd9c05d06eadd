"""The evaluation: its per-field breakdown against a reference computed by hand, and the weights it scores."""

import shutil

import numpy as np
import pytest
from skimage.metrics import structural_similarity as ssim

from pipelines.evaluate_restorers import gains_per_field, mixed_routes, score
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.restore.neural import default_weights
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


def test_candidate_weights_are_the_ones_scored(tmp_path):
    """``--fast-weights``: the mixed routes run the candidate folder's networks, not the shipped ones."""
    rng = np.random.default_rng(1)
    field = SyntheticSlide((256, 256), tissue=False).render(0, 0, 256, 256)
    blurred = np.stack([field[y:y + 64, x:x + 64] for y, x in rng.integers(0, 192, (3, 2))])
    kinds = np.array([BLUR_CLASSES.index(k) for k in ("mixed", "defocus", "mixed")])
    params = np.array([[3.0, 20.0, 30.0, 0.75, 2.0], [3.0, 0.0, 0.0, 0.75, 2.0], [2.0, 12.0, 100.0, 0.75, 1.5]],
                      np.float32)
    routed = np.zeros_like(blurred)
    shipped, _ = mixed_routes(blurred, kinds, params, routed)
    # A candidate folder whose DL_motion is the shipped DL_mixed: DBMID's chain (DL_motion, then DL_defocus) changes.
    for blur, source in (("defocus", "defocus"), ("motion", "mixed"), ("mixed", "mixed")):
        shutil.copy(default_weights("fast", source), tmp_path / f"deblur_fast_{blur}.safetensors")
    candidate, _ = mixed_routes(blurred, kinds, params, routed, weights_dir=str(tmp_path))
    assert not np.array_equal(candidate[[0, 2]], shipped[[0, 2]])
    assert (candidate[1] == 0).all() and (shipped[1] == 0).all()  # only the mixed pairs go through the chain
    (tmp_path / "deblur_fast_defocus.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="deblur_fast_defocus"):
        mixed_routes(blurred, kinds, params, routed, weights_dir=str(tmp_path))
