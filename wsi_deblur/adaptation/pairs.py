"""Training examples from a site's own tiles: simulated pairs, BlurNet crops, and DeepContrast's further degradation.

- :func:`simulated_pairs`: in-focus tiles degraded by the simulator
  (:func:`wsi_deblur.blur.degrade.restore_pair`), for the network of one blur
  type, with the kinds and targets the shipped networks learnt
  (:data:`wsi_deblur.training.batches.TRAINING_KINDS`);
- :func:`classifier_crops`: in-focus tiles degraded into BlurNet's four
  classes (:func:`wsi_deblur.blur.degrade.degraded_crop`), labels kept only
  where they match the blur the optics add;
- :func:`further_degraded_pairs`: DeepContrast's step. A tile the scanner
  blurred, ``b = K x``, is blurred again by the PSF its estimate implies,
  ``K b``, with noise of the tile's own level put back; the network learns
  ``K b -> b``, the inverse of the scanner's own blur on images of exactly
  this kind, and is then applied to ``b``.
"""

from __future__ import annotations

import numpy as np

from wsi_deblur.blur.degrade import MARGIN, SiteAcquisition, degraded_crop, restore_pair, unambiguous
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.blur.estimated_psf import estimate_psf, is_delta
from wsi_deblur.blur.fit import noise_sigma
from wsi_deblur.blur.simulate import convolve_rgb
from wsi_deblur.training.batches import TRAINING_KINDS

#: Share of in-focus pairs (output = input) among a network's simulated pairs, as in its shipped training.
IN_FOCUS_SHARE = 0.16

#: Which network's route a blur type takes with the ``fast`` networks (DL_mixed has its own).
ROUTE_NETWORK = {"defocus": "defocus", "motion": "motion", "mixed": "mixed"}


def _empty_pairs(crop: int) -> dict[str, np.ndarray]:
    images = np.zeros((0, crop, crop, 3), np.uint8)
    return {"blurred": images, "target": images.copy(), "kinds": np.zeros(0, np.int64),
            "params": np.zeros((0, 5), np.float32)}


def _draws(n: int) -> int:
    """Attempts allowed for ``n`` examples (a degradation out of range, or a crop that does not fit, is redrawn)."""
    return 50 * n + 100


def simulated_pairs(tiles: np.ndarray, network: str, n: int, crop: int, rng: np.random.Generator, *,
                    site: SiteAcquisition | None = None) -> dict[str, np.ndarray]:
    """``n`` (blurred, target) pairs of ``crop`` px for DL_``network`` from sharp ``(m, s, s, 3)`` tiles.

    Kinds as :data:`TRAINING_KINDS` (in-focus pairs :data:`IN_FOCUS_SHARE`,
    the blurred kinds equally); DL_motion's mixed pairs have the defocus-only
    field as target, the first step of DBMID's chain. Returns ``blurred``,
    ``target`` (``(n, crop, crop, 3)`` uint8), ``kinds`` (class indices) and
    ``params`` (defocus um, motion length px, angle deg, NA, added sigma px).
    ``site``: the simulator narrowed to the site (:mod:`wsi_deblur.adaptation.site_model`).
    """
    if network not in TRAINING_KINDS:
        raise ValueError(f"unknown network {network!r}; available: {', '.join(TRAINING_KINDS)}")
    if len(tiles) == 0 or n == 0:
        return _empty_pairs(crop)
    kinds = TRAINING_KINDS[network]
    blurred_kinds = len(kinds) - 1
    share = np.array([IN_FOCUS_SHARE] + [(1 - IN_FOCUS_SHARE) / blurred_kinds] * blurred_kinds)
    out: dict[str, list] = {"blurred": [], "target": [], "kinds": [], "params": []}
    for _ in range(_draws(n)):
        if len(out["kinds"]) == n:
            break
        kind = kinds[int(rng.choice(len(kinds), p=share))]
        made = restore_pair(tiles[int(rng.integers(len(tiles)))], crop, rng, kind, site=site)
        if made is None:
            continue
        blurred, sharp, stage, params = made
        out["blurred"].append(blurred)
        out["target"].append(stage if network == "motion" else sharp)
        out["kinds"].append(BLUR_CLASSES.index(kind))
        out["params"].append(params)
    return _stacked(out, crop)


def classifier_crops(tiles: np.ndarray, n: int, crop: int, rng: np.random.Generator, *,
                     site: SiteAcquisition | None = None) -> dict[str, np.ndarray]:
    """``n`` crops for BlurNet, the four classes in turn: ``images``, ``labels``, ``severity`` (n, 4).

    ``site``: the site's scale, stain and noise (the blur of each class stays the pipelines').
    """
    images, labels, severity = [], [], []
    if len(tiles):
        for _ in range(_draws(n)):
            if len(labels) == n:
                break
            label = BLUR_CLASSES[len(labels) % 4]
            made = degraded_crop(tiles[int(rng.integers(len(tiles)))], crop, rng, label, site=site)
            if made is None:
                continue
            image, p = made
            row = [p.defocus_um, p.motion_length_px, p.motion_angle_deg, p.optics.numerical_aperture]
            if not unambiguous(np.array([BLUR_CLASSES.index(label)]), np.array([row]))[0]:
                continue
            images.append(image)
            labels.append(BLUR_CLASSES.index(label))
            severity.append(row)
    return {"images": np.stack(images) if images else np.zeros((0, crop, crop, 3), np.uint8),
            "labels": np.array(labels, np.int64), "severity": np.array(severity, np.float32).reshape(-1, 4)}


def further_degraded_pairs(tiles: np.ndarray, estimates: list[BlurEstimate], network: str, n: int, crop: int,
                           rng: np.random.Generator, *, mpp: float = 0.5) -> dict[str, np.ndarray]:
    """DeepContrast pairs for DL_``network``: (``K b`` + noise, ``b``) from the scanned blurred tiles ``b``.

    Only tiles whose estimated type routes to ``network`` are used, each
    blurred again by the PSF of its own estimate
    (:func:`wsi_deblur.blur.estimated_psf.estimate_psf` at ``mpp``), with
    Gaussian noise of the tile's own level (:func:`wsi_deblur.blur.fit.noise_sigma`)
    put back, since blurring smooths the scanner's noise away. Crops are
    random and leave the kernel's reach at the window's edge out.
    """
    mine = [k for k, e in enumerate(estimates) if e.is_blurred and ROUTE_NETWORK.get(e.label) == network]
    if not mine or n == 0:
        return _empty_pairs(crop)
    degraded = {}
    out: dict[str, list] = {"blurred": [], "target": [], "kinds": [], "params": []}
    for _ in range(_draws(n)):
        if len(out["kinds"]) == n:
            break
        k = mine[int(rng.integers(len(mine)))]
        est = estimates[k]
        if k not in degraded:
            psf = estimate_psf(est, mpp, model="pupil")  # as measured in docs/adaptation.md; the disc: to measure
            if is_delta(psf):
                degraded[k] = None
            else:
                tile = tiles[k].astype(np.float64)
                again = convolve_rgb(tile, psf) + rng.normal(0.0, noise_sigma(tiles[k]), tile.shape)
                degraded[k] = (np.clip(np.rint(again), 0, 255).astype(np.uint8), max(psf.shape[-2:]) // 2)
        if degraded[k] is None:
            continue
        again, reach = degraded[k]
        h, w = again.shape[:2]
        edge = max(reach, MARGIN // 2)
        if h - 2 * edge < crop or w - 2 * edge < crop:
            continue
        y = int(rng.integers(edge, h - edge - crop + 1))
        x = int(rng.integers(edge, w - edge - crop + 1))
        out["blurred"].append(again[y:y + crop, x:x + crop])
        out["target"].append(tiles[k][y:y + crop, x:x + crop])
        out["kinds"].append(BLUR_CLASSES.index(est.label))
        out["params"].append(np.array([est.defocus_um, est.motion_length_px, est.motion_angle_deg, 0.75,
                                       est.defocus_sigma_px], np.float32))
    return _stacked(out, crop)


def _stacked(out: dict[str, list], crop: int) -> dict[str, np.ndarray]:
    if not out["kinds"]:
        return _empty_pairs(crop)
    return {"blurred": np.stack(out["blurred"]), "target": np.stack(out["target"]),
            "kinds": np.array(out["kinds"], np.int64), "params": np.stack(out["params"]).astype(np.float32)}


def joined(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pairs of several sources as one set."""
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
