"""What a blur classifier says about one tile."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from wsi_deblur.blur.classes import BLUR_CLASSES

__all__ = ["BLUR_CLASSES", "BlurEstimate", "mean_direction_deg"]


@dataclass(frozen=True)
class BlurEstimate:
    """Blur type and severity of one tile.

    Attributes
    ----------
    label : str
        One of :data:`BLUR_CLASSES`.
    probabilities : dict of str to float
        Class probabilities (sum to 1).
    defocus_sigma_px : float
        Standard deviation of the defocus PSF in level-0 pixels (0 if none).
    motion_length_px : float
        Length of linear motion in level-0 pixels (0 if none).
    motion_angle_deg : float
        Direction of motion, degrees counter-clockwise from the x axis, in [0, 180).
    defocus_um : float
        Estimated distance from the focal plane, micrometres (0 if unknown).
    """

    label: str
    probabilities: dict[str, float] = field(default_factory=dict)
    defocus_sigma_px: float = 0.0
    motion_length_px: float = 0.0
    motion_angle_deg: float = 0.0
    defocus_um: float = 0.0

    @property
    def confidence(self) -> float:
        return float(self.probabilities.get(self.label, 1.0))

    @property
    def blur_probability(self) -> float:
        """Probability that the tile is blurred in any way: 1 - P(in_focus).

        Where a tile is defocus or mixed is often uncertain while that it is
        blurred is not; this, not :attr:`confidence`, decides a restoration.
        Without an ``in_focus`` probability: 1 for a blurred label, else 0.
        """
        if "in_focus" in self.probabilities:
            return float(1.0 - self.probabilities["in_focus"])
        return 1.0 if self.is_blurred else 0.0

    @property
    def is_blurred(self) -> bool:
        return self.label != "in_focus"


def mean_direction_deg(angles_deg: Iterable[float]) -> float:
    """Mean of motion directions in degrees, in [0, 180).

    Directions are axial (a line at 179 deg is the one at -1 deg), so the
    plain mean is wrong near 0/180: 2 and 178 deg average to 0, not 90. This
    is the angle of the mean unit vector of the *doubled* angles, halved.
    Returns 0 for no angles.
    """
    a = np.deg2rad(2.0 * np.asarray(list(angles_deg), dtype=np.float64))
    if a.size == 0:
        return 0.0
    return float(np.rad2deg(np.arctan2(np.sin(a).mean(), np.cos(a).mean())) / 2.0) % 180.0
