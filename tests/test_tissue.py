import numpy as np

from wsi_deblur.io import open_slide
from wsi_deblur.synthetic import SyntheticSlide, tissue_alpha
from wsi_deblur.tissue import tile_tissue_fraction, tissue_mask


def test_tissue_mask_matches_the_known_outline(tissue_slide):
    slide = open_slide(tissue_slide)
    thumb, ds = slide.thumbnail(max_size=512)
    mask = tissue_mask(thumb)
    model = SyntheticSlide((1536, 2048), seed=7)
    truth = tissue_alpha(0, 0, 1536, 2048, model._coarse)[::4, ::4] > 0.5
    truth = truth[: mask.shape[0], : mask.shape[1]]
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert ds == 4 and iou > 0.9


def test_blank_glass_has_no_tissue():
    glass = np.full((200, 300, 3), 243, np.uint8)
    glass = (glass + np.random.default_rng(0).integers(-3, 4, glass.shape)).astype(np.uint8)
    assert not tissue_mask(glass).any()


def test_tile_fraction_equals_brute_force():
    rng = np.random.default_rng(1)
    mask = rng.random((97, 131)) > 0.6
    ds, tile = 4.0, 24  # 6 mask pixels per tile
    frac = tile_tissue_fraction(mask, ds, (17, 22), tile)
    for i in range(17):
        for j in range(22):
            block = mask[i * 6:(i + 1) * 6, j * 6:(j + 1) * 6]
            ref = block.mean() if block.size else mask[min(i * 6, 96), min(j * 6, 130)]
            assert abs(frac[i, j] - ref) < 1e-6, (i, j)
