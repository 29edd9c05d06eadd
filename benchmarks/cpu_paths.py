"""Every CPU path of `fast`'s DL_defocus and of BlurNet on this machine, torch.compile included.

    python benchmarks/cpu_paths.py [--threads 2]

For each network (fast: four 576-px windows; BlurNet: sixteen 256-px crops,
its batch in `qc`): fp32 with PyTorch's defaults, fp32 channels-last, bf16
autocast channels-last, and the last two under ``torch.compile`` (inductor),
with the seconds the first compiled call took. Prints the CPU (model and the
features that decide bf16's speed, :func:`wsi_deblur.nets.cpu_path.cpu_identity`),
the path :mod:`wsi_deblur.nets.cpu_path` chose for each network, and a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def networks():
    from wsi_deblur.classify.neural import default_weights as blurnet_weights
    from wsi_deblur.nets.runtime import load_blurnet, network_from_weights
    from wsi_deblur.restore.neural import default_weights

    fast, _ = network_from_weights(default_weights("fast", "defocus"))
    blurnet, _ = load_blurnet(str(blurnet_weights()))
    return {"fast DL_defocus": (fast, (4, 3, 576, 576), default_weights("fast", "defocus")),
            "BlurNet": (blurnet, (16, 3, 256, 256), blurnet_weights())}


def mpx_per_s(fn, x, bf16: bool, repeats: int = 5) -> tuple[float, float]:
    """(Mpx/s of the best of ``repeats`` calls, seconds of the first call)."""
    import torch

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        t0 = time.perf_counter()
        fn(x)
        first = time.perf_counter() - t0
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x)
            best = min(best, time.perf_counter() - t0)
    return x.shape[0] * x.shape[2] * x.shape[3] / 1e6 / best, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from wsi_deblur.nets.cpu_path import cached_cpu_path, cpu_identity
    from wsi_deblur.nets.files import file_sha256

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_identity()}; {args.threads} threads")
    print("| network | fp32 defaults | fp32 channels-last | bf16 channels-last | compiled fp32 CL | "
          "compiled bf16 CL | compile (s) | chosen by cpu_path |\n|---|---|---|---|---|---|---|---|")
    for name, (net, shape, weights) in networks().items():
        x = torch.rand(shape)
        plain = mpx_per_s(net, x, False)[0]
        net_cl = net.to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        fp32_cl, bf16_cl = mpx_per_s(net_cl, x_cl, False)[0], mpx_per_s(net_cl, x_cl, True)[0]
        compiled = torch.compile(net_cl)
        c32, t32 = mpx_per_s(compiled, x_cl, False)
        c16, t16 = mpx_per_s(compiled, x_cl, True)
        chosen = cached_cpu_path(file_sha256(Path(weights))) or "not measured yet"
        print(f"| {name} | {plain:.1f} | {fp32_cl:.1f} | {bf16_cl:.1f} | {c32:.1f} | {c16:.1f} | "
              f"{t32:.0f} + {t16:.0f} | {chosen} |")


if __name__ == "__main__":
    main()
