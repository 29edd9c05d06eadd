"""A classical blur classifier: re-blur ratios of directional gradient energy.

For a step edge blurred by a Gaussian of std ``s``, re-blurring with a known
``r`` lowers the gradient energy by ``E / E_r = (s**2 + r**2) / s**2``; solving
for ``s`` gives the blur width already in the image. Measured along directional
derivatives (from the structure tensor) this gives a blur width per direction:

- all widths small -> in focus;
- all widths large and alike -> defocus;
- one direction much wider than the perpendicular one -> linear motion along
  it (mixed when the narrow direction is blurred as well).

It needs no training and is fast; it remains the baseline the networks are
measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from wsi_deblur.blur.classes import MOVING
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.classify.base import luma

ANGLES_DEG = np.arange(0.0, 180.0, 7.5)
def _tensor(img: np.ndarray) -> tuple[float, float, float]:
    gy, gx = np.gradient(img)
    return float(np.mean(gx * gx)), float(np.mean(gx * gy)), float(np.mean(gy * gy))


def directional_blur_widths(gray: np.ndarray, *, presmooth: float = 1.0, reblur: float = 3.0,
                            angles_deg: np.ndarray = ANGLES_DEG) -> np.ndarray:
    """Blur width (Gaussian-equivalent std, pixels) along each direction.

    Parameters
    ----------
    gray : ndarray, shape (y, x)
        Luminance, any scale.
    presmooth : float
        Gaussian std (pixels) applied first to suppress sensor and JPEG noise;
        removed from the result in quadrature.
    reblur : float
        Std (pixels) of the extra, known blur.
    angles_deg : ndarray
        Directions, degrees counter-clockwise from x.

    Returns
    -------
    ndarray, shape like ``angles_deg``
        Estimated blur std along each direction, in pixels (>= 0).
    """
    base = ndi.gaussian_filter(gray, presmooth, mode="reflect")
    more = ndi.gaussian_filter(gray, np.hypot(presmooth, reblur), mode="reflect")
    crop = (slice(8, -8), slice(8, -8)) if min(gray.shape) > 32 else (slice(None), slice(None))
    jxx, jxy, jyy = _tensor(base[crop])
    kxx, kxy, kyy = _tensor(more[crop])
    theta = np.deg2rad(angles_deg)
    c, s = np.cos(theta), -np.sin(theta)  # rows grow downwards
    e = c * c * jxx + 2 * c * s * jxy + s * s * jyy
    er = c * c * kxx + 2 * c * s * kxy + s * s * kyy
    ratio = np.maximum(e / np.maximum(er, 1e-12), 1.0 + 1e-6)
    width = reblur / np.sqrt(ratio - 1.0)
    return np.sqrt(np.maximum(width ** 2 - presmooth ** 2, 0.0))


@dataclass
class ClassicalBlurClassifier:
    """Blur type and severity from directional blur widths (no training).

    Thresholds were set on real in-focus fields blurred by known PSFs (see
    ``benchmarks/classical_classifier.py``).

    Parameters
    ----------
    sharp_width_px : float
        Widest direction (Gaussian std, pixels) still called in focus.
    anisotropy_ratio : float
        Widest over narrowest width above which blur is directional...
    anisotropy_excess_px2 : float
        ...provided the widths also differ by this much in variance (px**2).
    mixed_width_px : float
        Narrowest width above which directional blur is called mixed.
    """

    sharp_width_px: float = 1.9
    anisotropy_ratio: float = 1.3
    anisotropy_excess_px2: float = 2.0
    mixed_width_px: float = 2.3
    name: str = "classical"

    def estimate(self, tile: np.ndarray) -> BlurEstimate:
        """Classify one ``(y, x, 3)`` uint8 tile."""
        gray = luma(tile)
        if float(gray.std()) < 2.0:  # flat: nothing to judge focus by
            return BlurEstimate("in_focus", _onehot("in_focus", 0.5))
        widths = directional_blur_widths(gray)
        k = int(np.argmax(widths))
        wmax, wmin = float(widths[k]), float(widths.min())
        excess = wmax ** 2 - wmin ** 2
        directional = min(wmax / max(wmin, 0.25) - self.anisotropy_ratio,
                          (excess - self.anisotropy_excess_px2) / 4.0)
        scores = {
            "in_focus": self.sharp_width_px - wmax,
            "defocus": min(wmax - self.sharp_width_px, -directional),
            "motion": min(wmax - self.sharp_width_px, directional, self.mixed_width_px - wmin),
            "mixed": min(wmax - self.sharp_width_px, directional, wmin - self.mixed_width_px),
        }
        label = max(scores, key=scores.get)
        probs = _softmax(scores, temperature=0.25)
        sigma = length = angle = 0.0
        if label == "defocus":
            sigma = float(np.sqrt(np.mean(widths ** 2)))
        if label in MOVING:
            # A box of length L has variance L**2 / 12 along its direction.
            length = float(np.sqrt(12.0 * max(excess, 0.0)))
            angle = float(ANGLES_DEG[k])
        if label == "mixed":
            sigma = wmin
        return BlurEstimate(label, probs, defocus_sigma_px=sigma,
                            motion_length_px=length, motion_angle_deg=angle)

    def classify(self, tiles: np.ndarray) -> list[BlurEstimate]:
        """Classify a batch ``(n, y, x, 3)`` of uint8 tiles."""
        return [self.estimate(t) for t in tiles]


def _softmax(scores: dict[str, float], temperature: float) -> dict[str, float]:
    v = np.array([scores[c] for c in BLUR_CLASSES]) / temperature
    p = np.exp(v - v.max())
    p /= p.sum()
    return {c: float(x) for c, x in zip(BLUR_CLASSES, p)}


def _onehot(label: str, p: float) -> dict[str, float]:
    rest = (1 - p) / (len(BLUR_CLASSES) - 1)
    return {c: (p if c == label else rest) for c in BLUR_CLASSES}
