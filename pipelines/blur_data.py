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
from functools import cache, partial
from pathlib import Path

import numpy as np

from pipelines.provenance import command_line
from pipelines.shared_data import find_shared_data
from wsi_deblur.blur.degrade import (
    DEFOCUS_MIN_SIGMA_PX,
    MILD_DEFOCUS_SIGMA_PX,
    degraded_crop,
    unambiguous,
    warm_psf_bank,
)
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.blur.simulate import RANGES
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


@cache
def load_field(path: str) -> np.ndarray:
    """The whole field at about 0.5 um/px (fields at 0.23 um/px are halved)."""
    slide = open_slide(path)
    img = slide.read_region(0, 0, *slide.shape).astype(np.float32)
    if slide.mpp and slide.mpp < 0.35:
        h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
        img = img[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    return img


def make_example(path: str, size: int, rng: np.random.Generator, label: str, *, out_of_plane: float = 0.0,
                 min_defocus_um: float | None = None, log_defocus: bool = False, pale: float = 0.0):
    """One degraded crop of class ``label`` from the field at ``path`` (:func:`wsi_deblur.blur.degrade.degraded_crop`)."""
    return degraded_crop(load_field(path), size, rng, label, out_of_plane=out_of_plane, min_defocus_um=min_defocus_um,
                         log_defocus=log_defocus, pale=pale)


def _worker(args, *, out_of_plane: float = 0.0, min_defocus_um: float | None = None,
            min_defocus_sigma_px: float = DEFOCUS_MIN_SIGMA_PX, log_defocus: bool = False,
            pale: float = 0.0) -> dict[str, np.ndarray]:
    paths, n, size, seed = args
    rng = np.random.default_rng(seed)
    images, labels, severity, fields = [], [], [], []
    while len(images) < n:
        label = BLUR_CLASSES[len(images) % 4]
        field = int(rng.integers(len(paths)))
        made = make_example(paths[field], size, rng, label, out_of_plane=out_of_plane, min_defocus_um=min_defocus_um,
                            log_defocus=log_defocus, pale=pale)
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
    parser.add_argument("--defocus-label-px", type=float, default=None, metavar="S",
                        help="Gaussian-equivalent std (px at 0.5 um/px) from which a defocus crop is labelled "
                             "defocus, overriding the rule above (one depth of field at NA 0.75 adds 1.0 px)")
    parser.add_argument("--log-defocus", action="store_true",
                        help="draw the defocus of defocus crops log-uniformly from --min-defocus-um (mild defocus, "
                             "the scanners' commonest, gets its share)")
    parser.add_argument("--pale", type=float, default=0.0, metavar="P",
                        help="share of crops (every class) whose absorbance is scaled by 0.3-0.7: sharp tissue of "
                             "low texture (default 0)")
    args = parser.parse_args()
    root = shared_data_dir()
    split = source_images(root)
    print(f"train images: {len(split['train'])}, test images: {len(split['test'])}")
    mild = args.min_defocus_um is not None and args.min_defocus_um < RANGES["defocus_um"][0]
    threshold = MILD_DEFOCUS_SIGMA_PX if mild else DEFOCUS_MIN_SIGMA_PX
    if args.defocus_label_px is not None:
        threshold = args.defocus_label_px
    worker = partial(_worker, out_of_plane=args.out_of_plane, min_defocus_um=args.min_defocus_um,
                     min_defocus_sigma_px=threshold, log_defocus=args.log_defocus, pale=args.pale)
    train = build(root, args.n_train, args.size, "train", args.seed + 1, worker=worker)
    train["min_defocus_sigma_px"] = np.array(threshold)
    test = build(root, args.n_test, args.size, "test", TEST_SEED)
    save_splits(args.out, train, test, split, command=command_line("pipelines.blur_data"))
    print(f"wrote {args.out}: {len(train['labels'])} train, {len(test['labels'])} test crops of {args.size} px")


if __name__ == "__main__":
    main()
