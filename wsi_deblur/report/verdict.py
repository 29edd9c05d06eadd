"""The QC verdict of a slide (pass / review / rescan) and its severity statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wsi_deblur.blur.classes import BLURRED
from wsi_deblur.blurmap import LABEL_VALUES, BlurMap

VERDICTS = ("pass", "review", "rescan")
BLURRED_CLASSES = BLURRED


@dataclass(frozen=True)
class VerdictThresholds:
    """When a slide needs a look or a rescan, as shares of its *tissue* tiles.

    Attributes
    ----------
    review_fraction : float
        Blurred share (defocus + motion + mixed) at or above which the slide
        is flagged for review.
    rescan_fraction : float
        Blurred share at or above which the slide should be rescanned.
    min_tissue_tiles : int
        Fewer tissue tiles than this cannot be judged: the slide goes to review.
    """

    review_fraction: float = 0.05
    rescan_fraction: float = 0.20
    min_tissue_tiles: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.review_fraction <= self.rescan_fraction <= 1:
            raise ValueError("thresholds must satisfy 0 <= review_fraction <= rescan_fraction <= 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def blurred_fraction(blurmap: BlurMap) -> float:
    """Share of tissue tiles classified defocus, motion or mixed."""
    fractions = blurmap.class_fractions()
    return float(sum(fractions[c] for c in BLURRED_CLASSES))


def verdict(blurmap: BlurMap, thresholds: VerdictThresholds = VerdictThresholds()) -> str:
    """``pass``, ``review`` or ``rescan`` from the blurred share of tissue."""
    if int(blurmap.is_tissue.sum()) < thresholds.min_tissue_tiles:
        return "review"
    share = blurred_fraction(blurmap)
    if share >= thresholds.rescan_fraction:
        return "rescan"
    if share >= thresholds.review_fraction:
        return "review"
    return "pass"


def _stats(values: np.ndarray, scale: float = 1.0) -> dict[str, float] | None:
    if values.size == 0:
        return None
    v = values.astype(np.float64) * scale
    return {"mean": round(float(v.mean()), 4), "median": round(float(np.median(v)), 4),
            "p90": round(float(np.percentile(v, 90)), 4), "max": round(float(v.max()), 4)}


def severity_statistics(blurmap: BlurMap, mpp: float) -> dict[str, Any]:
    """Severity over blurred tissue tiles: defocus PSF sigma and motion length (px and um)."""
    tissue = blurmap.is_tissue
    defocused = tissue & np.isin(blurmap.label, [LABEL_VALUES["defocus"], LABEL_VALUES["mixed"]])
    moving = tissue & np.isin(blurmap.label, [LABEL_VALUES["motion"], LABEL_VALUES["mixed"]])
    blurred = tissue & (blurmap.label > LABEL_VALUES["in_focus"])
    return {
        "defocus_sigma_px": _stats(blurmap.defocus_sigma_px[defocused]),
        "defocus_sigma_um": _stats(blurmap.defocus_sigma_px[defocused], mpp),
        "motion_length_px": _stats(blurmap.motion_length_px[moving]),
        "motion_length_um": _stats(blurmap.motion_length_px[moving], mpp),
        "confidence_blurred": _stats(blurmap.confidence[blurred]),
        "confidence_tissue": _stats(blurmap.confidence[tissue]),
    }
