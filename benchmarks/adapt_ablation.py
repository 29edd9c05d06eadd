"""What each ingredient of adaptation does to DL_defocus on unseen tissue: the ablation behind docs/adaptation.md.

    python benchmarks/adapt_ablation.py [--max-tiles 128]

On the unseen-tissue slide of ``benchmarks/adapt.py`` (built the same way),
the site's tiles are sampled once; DL_defocus is then fine-tuned from the
shipped weights in several ways and applied straight to the slide's
defocused regions (64 px of context, the true route, no guard or blending),
scored by SSIM to the sharp twin. Variants (``lr, steps, data, simulator``):

- data: ``sim`` simulated pairs from the site's in-focus tiles; ``sim+dc``
  those and half as many further-degraded (DeepContrast) pairs from its
  blurred tiles; ``dc`` further-degraded pairs alone; ``dc+sim/4`` mostly those;
- simulator: ``generic`` (the training pipelines': any scale, stain, noise,
  defocus, NA), ``own scale`` (no rescaling or stain jitter), ``fitted``
  (:func:`wsi_deblur.adaptation.site_model.fit_site`: and the measured noise
  and defocus at NA 0.75), ``oracle`` (the slide's true noise and defocus range).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import adapt as bench  # noqa: E402

from pipelines.shared_data import find_shared_data  # noqa: E402
from wsi_deblur.adaptation.options import AdaptOptions  # noqa: E402
from wsi_deblur.adaptation.pairs import further_degraded_pairs, joined, simulated_pairs  # noqa: E402
from wsi_deblur.adaptation.site_model import fit_site  # noqa: E402
from wsi_deblur.adaptation.site_tiles import sample_site_tiles  # noqa: E402
from wsi_deblur.blur.degrade import SiteAcquisition  # noqa: E402
from wsi_deblur.blur.fit import ssim_inner  # noqa: E402
from wsi_deblur.io import open_slide  # noqa: E402
from wsi_deblur.nets.runtime import load_deblur_network, run_network
from wsi_deblur.restore.neural import default_weights  # noqa: E402
from wsi_deblur.training.loops import Schedule, TrainingPairs, fit_restorer  # noqa: E402

VARIANTS = (
    (2e-4, 300, "sim", "generic"), (1e-4, 300, "sim", "generic"), (2e-4, 1000, "sim", "generic"),
    (2e-4, 300, "sim+dc", "generic"), (2e-4, 300, "dc", "generic"), (2e-4, 300, "dc+sim/4", "generic"),
    (2e-4, 300, "sim", "own scale"), (2e-4, 300, "sim", "fitted"), (2e-4, 300, "sim+dc", "fitted"),
    (2e-4, 300, "sim", "oracle"),
)
PAD = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tiles", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("out/bench-adapt-ablation"))
    args = parser.parse_args()
    root = find_shared_data()
    if root is None:
        raise SystemExit("../shared/data not found beside the checkout; set WSI_DEBLUR_SHARED_DATA")
    torch.set_num_threads(2)
    path, sharp, rects = bench.build_slide(root, args.out)
    kinds = [r[4] for k, f in enumerate(bench.TEST_IMAGES)
             for r in bench.field_regions(k, bench.load_field(str(root / f)).shape[:2])]
    scanned = open_slide(path).read_region(0, 0, *sharp.shape[:2])
    padded = np.pad(scanned, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="symmetric")
    defocused = [r for r, kind in zip(rects, kinds) if kind == "defocus"]

    def region_ssim(net) -> float:
        out = []
        for y0, x0, y1, x1 in defocused:
            window = padded[y0:y1 + 2 * PAD, x0:x1 + 2 * PAD][None]
            restored = run_network(net, window)[0][PAD:-PAD, PAD:-PAD]
            out.append(ssim_inner(restored, sharp[y0:y1, x0:x1], border=0))
        return round(float(np.mean(out)), 4)

    tiles = sample_site_tiles([str(path)], AdaptOptions(max_tiles=args.max_tiles, tile_size=bench.TILE))
    fitted = fit_site(tiles.sharp, tiles.estimates)
    simulators = {"generic": None, "own scale": SiteAcquisition(), "fitted": fitted,
                  "oracle": SiteAcquisition(photons=(5000.0, 5000.01), defocus_um=(min(bench.DEFOCUS_UM),
                                                                                    max(bench.DEFOCUS_UM)),
                                            numerical_aperture=0.75)}
    shipped = load_deblur_network(str(default_weights("fast", "defocus")))
    result = {"tiles": {"in_focus": len(tiles.sharp), "blurred": len(tiles.blurred)},
              "fitted": {"photons": fitted.photons, "defocus_um": fitted.defocus_um},
              "as_scanned": round(float(np.mean([ssim_inner(scanned[y0:y1, x0:x1], sharp[y0:y1, x0:x1], border=0)
                                                 for y0, x0, y1, x1 in defocused])), 4),
              "shipped": region_ssim(shipped), "variants": []}
    for lr, steps, data, simulator in VARIANTS:
        rng = np.random.default_rng(10)
        site = simulators[simulator]
        share = {"sim": (1024, 0), "sim+dc": (1024, 512), "dc": (0, 1024), "dc+sim/4": (256, 1024)}[data]
        parts = [simulated_pairs(tiles.sharp, "defocus", share[0], 128, rng, site=site)] if share[0] else []
        if share[1]:
            parts.append(further_degraded_pairs(tiles.blurred, tiles.estimates, "defocus", share[1], 128, rng))
        pairs = joined(*parts)
        net = copy.deepcopy(shipped).float()
        t0 = time.perf_counter()
        fit_restorer(net, TrainingPairs.of(pairs), Schedule(steps, 16, lr), rng, loss="l1+ssim")
        row = {"lr": lr, "steps": steps, "data": data, "simulator": simulator, "ssim": region_ssim(net.eval()),
               "seconds": round(time.perf_counter() - t0, 1)}
        result["variants"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
