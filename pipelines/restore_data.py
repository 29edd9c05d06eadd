"""Training and test pairs for the deblurring networks: (blurred, sharp) crops.

Real in-focus fields from ``../shared/data`` (split by field exactly as for the
classifier: :data:`pipelines.blur_data.TEST_IMAGES` are never trained on),
with stain/illumination jitter, rescaling, rotations and flips, degraded by
the simulator: pupil-function defocus, linear motion, both, Poisson-Gaussian
noise and JPEG. Every pair stores

``blurred``
    what the scanner would give (uint8);
``sharp``
    the field before degradation (uint8): the target of the last network;
``stage``
    the target of the *first* network of DBMID's chain. For mixed blur, whose
    route is DL_motion then DL_defocus, it is the field with only the defocus
    applied: DL_motion learns to take the motion out and leave the defocus for
    DL_defocus. For every other kind it equals ``sharp``;
``kind``, ``params``
    blur type index (as :data:`wsi_deblur.blur.estimate.BLUR_CLASSES`) and
    (defocus um, motion length px, motion angle deg, NA, added defocus sigma px);
``field``
    the field the pair was cut from, an index into the split's ``*_sources``.

Restoration covers the blurs worth restoring: defocus adding a
Gaussian-equivalent std of 1.2 to 6 px (at 0.5 um/px); more than that is a
rescan. Noise is that of a slide scanner's camera (1000 to 20000 photons at
full scale, log-uniform: 0.7-3% of full scale at white), less extreme than
the classifier's training range (down to 200 photons), which is built to be
robust rather than realistic. In-focus pairs (target = the field itself) teach the networks to leave
sharp tissue alone.

With ``--out-of-plane P``, a share P of the defocus and mixed *training* pairs
also carry the fine structure of another plane of a thick section
(:func:`wsi_deblur.blur.simulate.add_out_of_plane`: another crop of the same
field, at 0.1-0.4 of its contrast) with the sharp plane still the target, and
those pairs get 5000-50000 photons (the noise of the real focus pair, 1-3 grey
levels). What the real out-of-focus plane holds and the plain simulator lacks
(``pipelines.evaluate_real``): the networks learn that fine detail in a
defocused tile belongs to other planes, not to the one they restore. The
held-out pairs never carry it, so the evaluation stays comparable.

With ``--disc P``, a share P of the defocus *training* pairs are blurred by a
geometric disc adding the same Gaussian-equivalent width as the pupil PSF they
replace (:func:`wsi_deblur.blur.degrade.disc_defocus_kernels`): the shape of the
real focus pair's blur, whose transfer turns negative four times deeper than
the pupil model's.

    python -m pipelines.restore_data --out out/data/restore-128.npz
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np

from pipelines import blur_data
from pipelines.blur_data import load_field, shared_data_dir, source_images
from pipelines.provenance import command_line
from wsi_deblur.blur.degrade import KIND_SHARES, restore_pair
from wsi_deblur.blur.estimate import BLUR_CLASSES

#: Seed of the held-out pairs, whatever ``--seed`` (that of the training pairs) is.
TEST_SEED = 12


def make_pair(path: str, size: int, rng: np.random.Generator, kind: str, out_of_plane: float = 0.0, *,
              disc: float = 0.0):
    """One pair of ``kind`` from the field at ``path`` (:func:`wsi_deblur.blur.degrade.restore_pair`), or None."""
    return restore_pair(load_field(path), size, rng, kind, out_of_plane, disc=disc)


def _worker(args, *, out_of_plane: float = 0.0, disc: float = 0.0) -> dict[str, np.ndarray]:
    paths, n, size, seed = args
    rng = np.random.default_rng(seed)
    kinds = list(KIND_SHARES)
    share = np.array(list(KIND_SHARES.values()))
    out: dict[str, list] = {"blurred": [], "sharp": [], "stage": [], "kind": [], "params": [], "field": []}
    while len(out["kind"]) < n:
        kind = kinds[int(rng.choice(len(kinds), p=share / share.sum()))]
        field = int(rng.integers(len(paths)))
        made = make_pair(paths[field], size, rng, kind, out_of_plane, disc=disc)
        if made is None:
            continue
        for key, value in zip(("blurred", "sharp", "stage", "params"), made):
            out[key].append(value)
        out["kind"].append(BLUR_CLASSES.index(kind))
        out["field"].append(field)
    return {k: np.array(v, np.int64) if k in ("kind", "field") else np.stack(v) for k, v in out.items()}


def build(root: Path, n: int, size: int, split: str, seed: int, workers: int = 2, *,
          out_of_plane: float = 0.0, disc: float = 0.0) -> dict[str, np.ndarray]:
    """``n`` pairs of ``size`` px from the ``split`` fields, reproducible from ``seed``."""
    worker = partial(_worker, out_of_plane=out_of_plane, disc=disc)
    return blur_data.build(root, n, size, split, seed, workers, worker=worker, multiple=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/data/restore-128.npz"))
    parser.add_argument("--n-train", type=int, default=12000)
    parser.add_argument("--n-test", type=int, default=600)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--test-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help=blur_data.SEED_HELP)
    parser.add_argument("--out-of-plane", type=float, default=0.0, metavar="P",
                        help="share of defocus and mixed training pairs that carry another plane's fine detail "
                             "(a thick section; default 0)")
    parser.add_argument("--disc", type=float, default=0.0, metavar="P",
                        help="share of defocus training pairs blurred by a geometric disc of the same width instead "
                             "of the pupil PSF (the real focus pair's shape; default 0)")
    args = parser.parse_args()
    for name in ("out_of_plane", "disc"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1], not {getattr(args, name)}")
    root = shared_data_dir()
    split = source_images(root)
    train = build(root, args.n_train, args.size, "train", args.seed + 11, out_of_plane=args.out_of_plane,
                  disc=args.disc)
    test = build(root, args.n_test, args.test_size, "test", TEST_SEED)
    blur_data.save_splits(args.out, train, test, split, command=command_line("pipelines.restore_data"))
    print(f"wrote {args.out}: {len(train['kind'])} train pairs of {args.size} px, "
          f"{len(test['kind'])} test pairs of {args.test_size} px")


if __name__ == "__main__":
    main()
