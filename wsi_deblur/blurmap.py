"""The :class:`BlurMap`: tissue, blur class and severity of every tile of a slide.

Small (one value per tile), held in memory, and the one source of truth for
the QC outputs (label image, overlay, GeoJSON, qc.json) and for the restore
plan (which tiles are restored, with which estimate).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import numpy as np

from wsi_deblur.blur.classes import LABEL_VALUES
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.tiling.grid import TileGrid
from wsi_deblur.write.location import output_path

#: Probability of being blurred (1 - P(in_focus)) a tile needs to be
#: restored: restoring a sharp tile does harm, so only confident calls are
#: acted on. It is not the probability of the class: a tile that is surely
#: blurred, but defocus or mixed by 55/40, is restored (by its likelier route).
DEFAULT_MIN_CONFIDENCE = 0.8

#: ``BlurMap.guard_action`` values, by index.
GUARD_ACTIONS = ("not restored", "restorer", "pulled back", "not recorded")

#: Label image values: 0 background, then one per blur class.



@dataclass
class BlurMap:
    """Per-tile QC results over a :class:`TileGrid`.

    All arrays have shape ``grid.grid_shape`` (tile rows, tile columns).

    Attributes
    ----------
    grid : TileGrid
    tissue_fraction : float32 array
        Share of each tile covered by tissue, in [0, 1].
    is_tissue : bool array
        Tiles that were classified.
    label : uint8 array
        0 background, 1 in_focus, 2 defocus, 3 motion, 4 mixed.
    confidence : float32 array
        Probability of the assigned class.
    blur_probability : float32 array
        Probability that the tile is blurred in any way, 1 - P(in_focus):
        what decides a restoration (:meth:`restore_mask`).
    defocus_sigma_px, motion_length_px, motion_angle_deg : float32 arrays
        Severity (see :class:`BlurEstimate`), level-0 pixels and degrees.
    guard_action : uint8 array
        What the consistency guard did with each tile's restoration
        (:data:`GUARD_ACTIONS`: not restored, restorer kept, pulled back toward
        the input, not recorded (a resumed run)).
    guard_consistency : float32 array
        The guard's consistency of each restored tile (at most 1: its
        restoration explains the input; :class:`~wsi_deblur.restore.guard.GuardReport`);
        NaN where nothing was checked.
    guard_capped : bool array
        Restored tiles whose output the guard cut, where the PSF passes
        little, to the amplitude of the slide's in-focus tissue.
    """

    grid: TileGrid
    tissue_fraction: np.ndarray
    is_tissue: np.ndarray
    label: np.ndarray = field(default=None)  # type: ignore[assignment]
    confidence: np.ndarray = field(default=None)  # type: ignore[assignment]
    blur_probability: np.ndarray = field(default=None)  # type: ignore[assignment]
    defocus_sigma_px: np.ndarray = field(default=None)  # type: ignore[assignment]
    motion_length_px: np.ndarray = field(default=None)  # type: ignore[assignment]
    motion_angle_deg: np.ndarray = field(default=None)  # type: ignore[assignment]
    guard_action: np.ndarray = field(default=None)  # type: ignore[assignment]
    guard_consistency: np.ndarray = field(default=None)  # type: ignore[assignment]
    guard_capped: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        shape = self.grid.grid_shape
        for name, dtype in (("label", np.uint8), ("confidence", np.float32), ("blur_probability", np.float32),
                            ("defocus_sigma_px", np.float32),
                            ("motion_length_px", np.float32), ("motion_angle_deg", np.float32),
                            ("guard_action", np.uint8)):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(shape, dtype=dtype))
        if self.guard_consistency is None:
            self.guard_consistency = np.full(shape, np.nan, dtype=np.float32)
        if self.guard_capped is None:
            self.guard_capped = np.zeros(shape, dtype=bool)

    def set_guard(self, reports: dict, *, unrecorded=()) -> None:
        """Record the guard's :class:`~wsi_deblur.restore.guard.GuardReport` of each restored tile.

        ``unrecorded``: restored tiles whose report is not known (their regions
        were written by an interrupted earlier run).
        """
        for ij in unrecorded:
            self.guard_action[ij] = GUARD_ACTIONS.index("not recorded")
        for ij, report in reports.items():
            self.guard_action[ij] = GUARD_ACTIONS.index(report.action if report.action != "none" else "restorer")
            self.guard_consistency[ij] = report.consistency if report.action != "none" else np.nan
            self.guard_capped[ij] = report.capped

    def guard_summary(self) -> dict:
        """Counts of restored tiles by guard action, and their consistency (qc.json's ``restoration_guard``)."""
        checked = self.guard_consistency[np.isfinite(self.guard_consistency)]
        return {"tiles": {name: int((self.guard_action == k).sum()) for k, name in enumerate(GUARD_ACTIONS) if k},
                "capped_tiles": int(self.guard_capped.sum()),
                "max_consistency": round(float(checked.max()), 4) if checked.size else None,
                "mean_consistency": round(float(checked.mean()), 4) if checked.size else None}

    def set_estimate(self, ij: tuple[int, int], est: BlurEstimate) -> None:
        """Record the classifier's estimate for tile ``ij``."""
        self.label[ij] = LABEL_VALUES[est.label]
        self.confidence[ij] = est.confidence
        self.blur_probability[ij] = est.blur_probability
        self.defocus_sigma_px[ij] = est.defocus_sigma_px
        self.motion_length_px[ij] = est.motion_length_px
        self.motion_angle_deg[ij] = est.motion_angle_deg

    def estimate(self, ij: tuple[int, int]) -> BlurEstimate:
        """The estimate of tile ``ij`` (``in_focus`` for background)."""
        value = int(self.label[ij])
        name = BLUR_CLASSES[value - 1] if value else "in_focus"
        probabilities = {name: float(self.confidence[ij])} if value else {}
        if value > LABEL_VALUES["in_focus"]:
            probabilities["in_focus"] = 1.0 - float(self.blur_probability[ij])
        return BlurEstimate(name, probabilities,
                            defocus_sigma_px=float(self.defocus_sigma_px[ij]),
                            motion_length_px=float(self.motion_length_px[ij]),
                            motion_angle_deg=float(self.motion_angle_deg[ij]))

    def restore_mask(self, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> np.ndarray:
        """Tiles to restore: tissue, labelled blurred, and blurred with probability >= ``min_confidence``."""
        return (self.is_tissue & (self.label > LABEL_VALUES["in_focus"])
                & (self.blur_probability >= min_confidence))

    def tissue_tile_fraction(self) -> float:
        """Share of tiles that are tissue."""
        return float(self.is_tissue.mean()) if self.is_tissue.size else 0.0

    def class_fractions(self) -> dict[str, float]:
        """Share of the *tissue* tiles in each blur class (sums to 1 when any tissue), each tile weighed by its
        area inside the slide: a 1-px sliver at the slide's edge weighs 1/512th of a tile, not a whole one.
        """
        weight = self.grid.area_share() * self.is_tissue
        n = float(weight.sum())
        return {name: (float(weight[self.label == LABEL_VALUES[name]].sum()) / n if n else 0.0)
                for name in BLUR_CLASSES}

    def save(self, path: str | os.PathLike) -> None:
        """Write the per-tile arrays to an ``.npz`` file (a local path or fsspec URL)."""
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(self, name) for name in _ARRAYS})
        output_path(path).write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike, grid: TileGrid) -> BlurMap:
        """Read a blur map written by :meth:`save` for ``grid``.

        Raises
        ------
        ValueError
            The file holds a map of another grid shape or lacks an array.
        """
        with np.load(io.BytesIO(output_path(path).read_bytes()), allow_pickle=False) as data:
            missing = [name for name in _ARRAYS if name not in data and name != "blur_probability"]
            if missing:
                raise ValueError(f"{path}: blur map lacks {', '.join(missing)}")
            arrays = {name: data[name] for name in _ARRAYS if name in data}
        if "blur_probability" not in arrays:  # saved before it was recorded: bound it by the class probability
            arrays["blur_probability"] = _blur_probability_bound(arrays["label"], arrays["confidence"])
        shapes = {a.shape for a in arrays.values()}
        if shapes != {grid.grid_shape}:
            raise ValueError(f"{path}: blur map of shape {shapes}, expected {grid.grid_shape}")
        return cls(grid, **arrays)


#: The per-tile arrays of a :class:`BlurMap`, as saved.
_ARRAYS = ("tissue_fraction", "is_tissue", "label", "confidence", "blur_probability", "defocus_sigma_px",
           "motion_length_px", "motion_angle_deg")


def _blur_probability_bound(label: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """P(blurred) from the class and its probability alone: exact for in-focus tiles
    (1 - confidence), a lower bound for blurred ones (the class's own probability).
    """
    in_focus = label == LABEL_VALUES["in_focus"]
    return np.where(in_focus, 1.0 - confidence, np.where(label > 0, confidence, 0.0)).astype(np.float32)
