"""Training data for the blur models: real in-focus fields degraded by the simulator.

The images are the real H&E, IHC and Pap fields in ``../shared/data`` (see its
LICENSES); they are read from there and never copied into the project. Images
are split *by image* into train and test, so test crops come from fields the
models never saw.

    python -m pipelines.blur_data --out out/data/blur-128.npz --n-train 40000 --n-test 4000
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from pipelines.provenance import command_line
from pipelines.shared_data import find_shared_data
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.blur.simulate import (RANGES, BlurParams, Optics, add_out_of_plane, add_sensor_noise, convolve_rgb,
                                      defocus_psf_optics, jpeg_roundtrip, sample_params)
from wsi_deblur.blur.psf import motion_psf
from wsi_deblur.io import open_slide

#: Fields held out for testing (never used for training).
TEST_IMAGES = (
    "fields/he/template4.png",
    "fields/he/TCGA-3X-AAVA-01Z-00-DX1__0_0_5_506.jpg",
    "fields/he/torchstain-target.png",
    "fields/ihc/OS-2-ndpi.ome.tif",
    "fields/pap/d4c306ff8986eb65_e4d034335.png",
    "fields/pap/a3d303b97ddb6fce_imagem_teste_2.png",
    "tiles/tissue-level0-7352-11762-7864-12274.png",
    "tiles/very-low-nuclei-score-level0.png",
)

NUMERICAL_APERTURES = (0.5, 0.65, 0.75, 0.85, 0.95)

#: Contrast of another plane's fine detail in out-of-plane examples (``--out-of-plane`` of both data pipelines).
OUT_OF_PLANE_STRENGTH = (0.1, 0.4)
#: Photons at full scale of out-of-plane examples: the noise measured on the real focus pair (1-3 grey levels).
OUT_OF_PLANE_PHOTONS = (5000.0, 50000.0)

#: Seed of the held-out crops, whatever ``--seed`` (that of the training crops) is.
TEST_SEED = 2
#: ``--seed`` of the data pipelines: what it changes, and what it keeps.
SEED_HELP = ("seed of the training examples; files of one seed share their first examples (a bigger file extends a "
             "smaller one), so fresh examples need another seed; the held-out examples are the same whatever the "
             "seed, so models trained on different files compare")


def shared_data_dir() -> Path:
    path = find_shared_data()
    if path is None:
        raise SystemExit("../shared/data not found beside the checkout; set WSI_DEBLUR_SHARED_DATA")
    return path


def source_images(root: Path) -> dict[str, list[str]]:
    """In-focus tissue fields (relative paths), split into train and test."""
    files = sorted(str(p.relative_to(root)) for p in (root / "fields").glob("*/*") if p.is_file())
    files += sorted(str(p.relative_to(root)) for p in (root / "tiles").glob("*level0*.png"))
    test = [f for f in files if f in TEST_IMAGES]
    return {"train": [f for f in files if f not in TEST_IMAGES], "test": test}


@lru_cache(maxsize=None)
def load_field(path: str) -> np.ndarray:
    """The whole field at about 0.5 um/px (fields at 0.23 um/px are halved)."""
    slide = open_slide(path)
    img = slide.read_region(0, 0, *slide.shape).astype(np.float32)
    if slide.mpp and slide.mpp < 0.35:
        h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
        img = img[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    return img


@lru_cache(maxsize=4096)
def defocus_kernels(defocus_um: float, na: float) -> np.ndarray:
    """The ``(3, k, k)`` per-channel defocus PSF at 0.5 um/px (cached: see :func:`warm_psf_bank`)."""
    return defocus_psf_optics(defocus_um, Optics(numerical_aperture=na, mpp=0.5))


DEFOCUS_STEP_UM = 0.1

#: Classes are defined by the blur the optics really add (Gaussian-equivalent
#: std over the in-focus PSF, pixels at 0.5 um/px), not by the defocus distance
#: alone: at NA 0.95 half a micrometre already blurs, at NA 0.5 it does not.
SHARP_MAX_SIGMA_PX = 0.5
DEFOCUS_MIN_SIGMA_PX = 1.2
#: The same for training sets that teach mild defocus (``--min-defocus-um`` below 1.5): a blur disc
#: of 1 um radius adds about 1 px at 0.5 um/px.
MILD_DEFOCUS_SIGMA_PX = 0.9


@lru_cache(maxsize=None)
def _sigma_curve(na: float) -> tuple[np.ndarray, np.ndarray]:
    from wsi_deblur.blur.simulate import gaussian_sigma_px

    z = np.arange(0.0, 8.0 + 1e-9, 0.25)
    return z, np.array([gaussian_sigma_px(float(v), Optics(numerical_aperture=na, mpp=0.5)) for v in z])


def added_sigma_px(defocus_um: np.ndarray, na: np.ndarray) -> np.ndarray:
    """Blur the defocus adds (px at 0.5 um/px) for each (distance, NA) pair."""
    out = np.empty(len(defocus_um))
    for a in np.unique(na):
        z, sigma = _sigma_curve(float(round(float(a), 2)))
        sel = na == a
        out[sel] = np.interp(defocus_um[sel], z, sigma)
    return out


def unambiguous(labels: np.ndarray, severity: np.ndarray, *,
                min_defocus_sigma_px: float = DEFOCUS_MIN_SIGMA_PX) -> np.ndarray:
    """Crops whose label matches the blur they show: sharp enough or blurred enough."""
    sigma = added_sigma_px(severity[:, 0], severity[:, 3])
    defocused = np.isin(labels, [1, 3])
    return np.where(defocused, sigma >= min_defocus_sigma_px, sigma <= SHARP_MAX_SIGMA_PX)


def warm_psf_bank() -> None:
    """Compute every defocus kernel once (workers forked afterwards share them)."""
    for na in NUMERICAL_APERTURES:
        for z in np.arange(0.0, 8.0 + 1e-9, DEFOCUS_STEP_UM):
            defocus_kernels(round(float(z), 3), na)


def defocus_kernels_of(params: BlurParams) -> np.ndarray:
    """The defocus PSF of ``params``, its distance rounded to the bank's 0.1-um step."""
    z = round(round(params.defocus_um / DEFOCUS_STEP_UM) * DEFOCUS_STEP_UM, 3)
    return defocus_kernels(z, params.optics.numerical_aperture)


def psf_of(params: BlurParams) -> np.ndarray:
    """The ``(3, k, k)`` PSF of ``params``: defocus, then the motion line when there is one."""
    kernels = defocus_kernels_of(params)
    if params.motion_length_px > 1:
        from scipy.signal import fftconvolve

        line = motion_psf(params.motion_length_px, params.motion_angle_deg)
        kernels = np.stack([fftconvolve(k, line, mode="full") for k in kernels])
        kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    return kernels


def colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stain and illumination variation: per-channel gain and gamma in optical density."""
    od = -np.log(np.clip(img, 1, 255) / 255.0)
    od = od * rng.uniform(0.75, 1.3, 3) + rng.normal(0, 0.03, 3)
    out = 255.0 * np.exp(-np.clip(od, 0, None))
    return out * rng.uniform(0.93, 1.05)


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray | None:
    """A ``size``-px crop with structure, at a random scale (half the time 0.55-1x); None if none fits."""
    scale = rng.uniform(0.55, 1.0) if rng.random() < 0.5 else 1.0
    need = int(np.ceil(size / scale))
    h, w = img.shape[:2]
    if h < need or w < need:
        return None
    for _ in range(20):
        y, x = rng.integers(0, h - need + 1), rng.integers(0, w - need + 1)
        patch = img[y:y + need, x:x + need]
        if patch.mean(axis=2).std() > 10:  # enough structure to judge focus by
            break
    else:
        return None
    if need != size:
        from scipy import ndimage as ndi

        patch = ndi.zoom(patch, (size / need, size / need, 1), order=1)[:size, :size]
    patch = np.rot90(patch, rng.integers(4))
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def sample_mixed_params(label: str, rng: np.random.Generator, optics: Optics) -> BlurParams:
    """:func:`sample_params`, with mixed motion long enough to be seen over the defocus."""
    p = sample_params(label, rng, optics=optics)
    if label == "mixed":
        disc = p.defocus_um * np.tan(np.arcsin(optics.numerical_aperture)) / optics.mpp
        length = max(p.motion_length_px, min(40.0, 2.0 * disc + 6.0))
        p = replace(p, motion_length_px=float(length))
    return p


def make_example(path: str, size: int, rng: np.random.Generator, label: str, *, out_of_plane: float = 0.0,
                 min_defocus_um: float | None = None):
    """One degraded crop of class ``label`` and its parameters, or None if none fits.

    ``out_of_plane``: probability that a defocus or mixed crop carries another
    plane's fine detail (a thick section, :func:`wsi_deblur.blur.simulate.add_out_of_plane`,
    0.1-0.4 of its contrast, with the real focus pair's low noise);
    ``min_defocus_um``: the lowest defocus of defocus crops (default that of
    :data:`wsi_deblur.blur.simulate.RANGES`). Neither draws a random number
    when left at its default, so the crops are those of earlier versions.
    """
    img = load_field(path)
    margin = 40
    patch = random_crop(img, size + 2 * margin, rng)
    if patch is None:
        return None
    patch = colour_jitter(np.ascontiguousarray(patch), rng)
    optics = Optics(numerical_aperture=float(rng.choice(NUMERICAL_APERTURES)), mpp=0.5)
    params = sample_mixed_params(label, rng, optics)
    if min_defocus_um is not None and label == "defocus":
        params = replace(params, defocus_um=float(rng.uniform(min_defocus_um, RANGES["defocus_um"][1])))
    blurred = convolve_rgb(patch, psf_of(params))
    if out_of_plane > 0 and label in ("defocus", "mixed") and rng.random() < out_of_plane:
        other = random_crop(img, size + 2 * margin, rng)
        if other is not None:
            other = colour_jitter(np.ascontiguousarray(other), rng)
            blurred = add_out_of_plane(blurred, other, float(rng.uniform(*OUT_OF_PLANE_STRENGTH)))
            params = replace(params, photons=float(np.exp(rng.uniform(*np.log(OUT_OF_PLANE_PHOTONS)))))
    blurred = blurred[margin:-margin, margin:-margin]
    noisy = add_sensor_noise(blurred, rng, photons=params.photons, read_noise=params.read_noise)
    out = jpeg_roundtrip(noisy, params.jpeg_quality) if params.jpeg_quality else np.clip(np.rint(noisy), 0, 255)
    return out.astype(np.uint8), params


def _worker(args, *, out_of_plane: float = 0.0, min_defocus_um: float | None = None,
            min_defocus_sigma_px: float = DEFOCUS_MIN_SIGMA_PX) -> dict[str, np.ndarray]:
    paths, n, size, seed = args
    rng = np.random.default_rng(seed)
    images, labels, severity, fields = [], [], [], []
    while len(images) < n:
        label = BLUR_CLASSES[len(images) % 4]
        field = int(rng.integers(len(paths)))
        made = make_example(paths[field], size, rng, label, out_of_plane=out_of_plane, min_defocus_um=min_defocus_um)
        if made is None:
            continue
        img, p = made
        if not unambiguous(np.array([BLUR_CLASSES.index(label)]),
                           np.array([[p.defocus_um, 0, 0, p.optics.numerical_aperture]]),
                           min_defocus_sigma_px=min_defocus_sigma_px)[0]:
            continue
        images.append(img)
        labels.append(BLUR_CLASSES.index(label))
        severity.append([p.defocus_um, p.motion_length_px, p.motion_angle_deg, p.optics.numerical_aperture])
        fields.append(field)
    return {"images": np.stack(images), "labels": np.array(labels, np.int64),
            "severity": np.array(severity, np.float32), "fields": np.array(fields, np.int16)}


def build(root: Path, n: int, size: int, split: str, seed: int, workers: int = 2, *,
          worker=None, multiple: int = 4) -> dict[str, np.ndarray]:
    """``n`` examples of ``size`` px from the ``split`` fields, made by ``worker`` in ``workers`` processes.

    Each process makes a multiple of ``multiple`` examples (4 keeps the classes
    balanced) from its own seed, so the result is reproducible from ``seed``.
    ``worker`` takes ``(paths, n, size, seed)``; default: classifier crops.
    """
    paths = [str(root / p) for p in source_images(root)[split]]
    per = -(-n // (multiple * workers)) * multiple
    jobs = [(paths, per, size, seed * 1000 + k) for k in range(workers)]
    warm_psf_bank()
    for p in paths:
        load_field(p)  # cached before the fork: workers share the fields
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(pool.map(worker or _worker, jobs))
    return {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}


def save_splits(out: Path, train: dict[str, np.ndarray], test: dict[str, np.ndarray],
                sources: dict[str, list[str]], *, command: str = "") -> None:
    """One ``.npz`` with ``train_*`` and ``test_*`` arrays, the source fields of each split and the ``command`` that made it.

    Written under a temporary name and moved into place: a failed write leaves ``out`` as it was.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.npz")
    try:
        np.savez(partial, **{f"train_{k}": v for k, v in train.items()}, **{f"test_{k}": v for k, v in test.items()},
                 train_sources=np.array(sources["train"]), test_sources=np.array(sources["test"]),
                 command=np.array(command))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/data/blur-128.npz"))
    parser.add_argument("--n-train", type=int, default=40000)
    parser.add_argument("--n-test", type=int, default=4000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    parser.add_argument("--out-of-plane", type=float, default=0.0, metavar="P",
                        help="share of defocus and mixed training crops that carry another plane's fine detail "
                             "(a thick section; default 0)")
    parser.add_argument("--min-defocus-um", type=float, default=None, metavar="Z",
                        help="lowest defocus of defocus training crops, um (default 1.5); their labels are kept "
                             f"from a Gaussian-equivalent std of {MILD_DEFOCUS_SIGMA_PX} px instead of "
                             f"{DEFOCUS_MIN_SIGMA_PX} when it is below 1.5")
    args = parser.parse_args()
    root = shared_data_dir()
    split = source_images(root)
    print(f"train images: {len(split['train'])}, test images: {len(split['test'])}")
    mild = args.min_defocus_um is not None and args.min_defocus_um < RANGES["defocus_um"][0]
    threshold = MILD_DEFOCUS_SIGMA_PX if mild else DEFOCUS_MIN_SIGMA_PX
    worker = partial(_worker, out_of_plane=args.out_of_plane, min_defocus_um=args.min_defocus_um,
                     min_defocus_sigma_px=threshold)
    train = build(root, args.n_train, args.size, "train", args.seed + 1, worker=worker)
    train["min_defocus_sigma_px"] = np.array(threshold)
    test = build(root, args.n_test, args.size, "test", TEST_SEED)
    save_splits(args.out, train, test, split, command=command_line("pipelines.blur_data"))
    print(f"wrote {args.out}: {len(train['labels'])} train, {len(test['labels'])} test crops of {args.size} px")


if __name__ == "__main__":
    main()
