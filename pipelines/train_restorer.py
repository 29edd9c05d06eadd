"""Train one deblurring network (DL_defocus, DL_motion or DL_mixed; ``fast`` or ``dbmid``) and write its card.

    python -m pipelines.restore_data --out out/data/restore-128.npz       # the pairs (once)
    python -m pipelines.train_restorer --arch fast --blur defocus
    python -m pipelines.train_restorer --arch fast --blur motion
    python -m pipelines.train_restorer --arch dbmid --blur defocus
    python -m pipelines.train_restorer --arch dbmid --blur motion
    python -m pipelines.train_restorer --arch bcr --blur all     # one network told the PSF, every blur type
    # fine-tune from earlier weights (how the shipped fast networks were made; see docs/models.md):
    python -m pipelines.train_restorer --arch fast --blur defocus --steps 6000 --lr 5e-4 --seed 1 --init W

Data (see :mod:`pipelines.restore_data`): DL_defocus learns defocused -> sharp;
DL_motion learns motion -> sharp and mixed -> defocus only (the first step of
DBMID's mixed route, motion then defocus); DL_mixed (``fast``'s route for mixed
blur, in one network) learns mixed -> sharp; all also see in-focus pairs
(-> themselves) so that sharp tissue comes out as it went in.

``fast``'s DL_motion and DL_mixed are directional (:mod:`wsi_deblur.nets.direction_fold`):
each training pair is mirrored and/or transposed so that its motion direction
lies in 0-45 degrees, and the network is told that folded direction (the true
one plus Gaussian noise of ``--angle-jitter`` degrees std, near BlurNet's
direction error of 6 degrees mean absolute; in-focus pairs get a random one);
a half-turn, which keeps the direction, is the only other augmentation.
``dbmid`` stays blind to the direction, as in the paper. ``bcr`` learns every
kind at once (``--blur all``), told each pair's PSF as BlurNet would report
it (widths off by a log-normal factor of ``--width-error``, directions by
``--angle-jitter``; :func:`wsi_deblur.training.batches.pair_psf`), under
every quarter-turn and mirror (the direction turned with the pair); its
held-out metrics are with the true PSF.

Settings: ``dbmid`` as the paper (MSE, Adam at a constant 1e-4); ``fast`` with
an L1 loss and Adam with a one-cycle schedule peaking at 2e-3 (it converges in
the few thousand steps a CPU affords); ``--loss l1+ssim`` trains on the SSIM
the evaluation reports (:mod:`wsi_deblur.training.losses`); ``bcr`` adds
m-rBCR's Fourier L1 over three scales to it (``l1+ssim+fourier``). Fixed seeds; fp32, channels-last (bf16
training is an order of magnitude slower on this CPU's torch build). Writes
safetensors with the config in its metadata, a Markdown model card (data,
settings, held-out metrics, sha256) and a JSON of the same metrics.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from pipelines.provenance import command_line, machine, sha256_of, start_weights, weights_out
from wsi_deblur.blur.classes import MOVING
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.blur.otf import DEFOCUS_OTF_MODELS
from wsi_deblur.nets.files import read_config, restorer_weights_name, save_network
from wsi_deblur.nets.registry import list_networks
from wsi_deblur.nets.runtime import build_network, macs_per_pixel, network_conditions, run_network
from wsi_deblur.training.batches import TRAINING_KINDS, pair_angles, pair_psf
from wsi_deblur.training.loops import ConditionNoise, Schedule, TrainingPairs, fit_restorer
from wsi_deblur.training.losses import LOSSES

MODELS = Path(__file__).resolve().parents[1] / "wsi_deblur" / "models"


#: Networks told the motion direction (their pairs folded by it) when the architecture allows.
DIRECTIONAL_BLURS = MOVING

#: Each architecture's training defaults (the registry's: :mod:`wsi_deblur.nets.registry`).
DEFAULTS = {spec.name: spec.training for spec in list_networks("restorer")}

#: The networks each architecture trains (``bcr``: one for every blur type).
BLURS = {spec.name: spec.networks for spec in list_networks("restorer")}


def select(data: dict, split: str, blur: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, targets, kinds and params of the pairs ``blur``'s network learns from."""
    kinds = data[f"{split}_kind"]
    keep = np.isin(kinds, [BLUR_CLASSES.index(k) for k in TRAINING_KINDS[blur]])
    target = data[f"{split}_stage"] if blur == "motion" else data[f"{split}_sharp"]
    return data[f"{split}_blurred"][keep], target[keep], kinds[keep], data[f"{split}_params"][keep]


def start_widths(path: Path) -> tuple[int, ...] | None:
    """The feature widths recorded in a weights file's config (fine-tuning keeps them unless told)."""
    widths = read_config(path).get("widths")
    return tuple(widths) if widths else None


def load_start_weights(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load fine-tuning start weights: all of them, or a two-level fast network's into a three-level one.

    Raises ValueError, naming the first mismatching tensors, for weights of another architecture.
    """
    own = net.state_dict()
    new_level = {f"{layer}.{p}" for layer in ("down2", "deep", "up2") for p in ("weight", "bias")}
    missing = sorted(set(own) - set(state) - new_level)
    unexpected = sorted(set(state) - set(own))
    misshapen = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        raise ValueError("weights of another architecture: "
                         + "; ".join(f"{what} {', '.join(keys[:3])}" for what, keys in
                                     (("missing", missing), ("unexpected", unexpected), ("other shape", misshapen))
                                     if keys))
    net.load_state_dict(state, strict=False)


def held_out_metrics(net: torch.nn.Module, blurred: np.ndarray, target: np.ndarray, kinds: np.ndarray,
                     angles: np.ndarray | None = None, psf: np.ndarray | None = None) -> dict:
    """Mean PSNR (dB) and SSIM of input and output against the target, per kind.

    ``angles``: each pair's motion direction, for a directional network; ``psf``: its PSF, for ``bcr``.
    """
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from skimage.metrics import structural_similarity as ssim

    net.eval()
    out = {}
    restored = run_network(net, blurred, angles_deg=angles, psf=psf, max_pixels=8 * blurred.shape[1] * blurred.shape[2])
    for k in np.unique(kinds):
        sel = np.where(kinds == k)[0]
        row = {}
        for name, images in (("input", blurred), ("output", restored)):
            row[f"{name}_ssim"] = float(np.mean([ssim(images[i], target[i], channel_axis=2) for i in sel]))
            row[f"{name}_psnr"] = float(np.mean([psnr(target[i], images[i]) for i in sel]))
        row["n"] = int(len(sel))
        out[BLUR_CLASSES[k]] = row
    net.train()
    return out


def cpu_speed(net: torch.nn.Module, size: int = 512, batch: int = 4) -> float:
    """Mpx/s of fp32 channels-last inference on this machine's threads."""
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    extra = network_conditions(net, batch)
    net = net.eval()
    with torch.inference_mode():
        net(x, *extra)
        t0 = time.perf_counter()
        for _ in range(2):
            net(x, *extra)
    return 2 * batch * size * size / (time.perf_counter() - t0) / 1e6


def data_command(info: dict) -> str:
    """How a network's pairs file was made: its recorded :mod:`pipelines.restore_data` command, in backticks."""
    if info.get("data_command"):
        return f"`{info['data_command']}`"
    return (f"`python -m pipelines.restore_data` (`{info['data']}` was written before pairs files recorded their "
            "options)")


def _data_options(info: dict) -> str:
    """What the pairs file's options added to the simulator (thick sections, disc defocus), as card text."""
    command = info.get("data_command") or ""
    words = command.split()

    def share(option: str) -> str | None:
        return words[words.index(option) + 1] if option in words[:-1] else None

    notes = []
    if share("--out-of-plane"):
        notes.append(f"a share {share('--out-of-plane')} of the defocused pairs carry another plane's fine "
                     "detail (a thick section) with 5000-50000 photons")
    if share("--disc"):
        notes.append(f"a share {share('--disc')} of the defocus pairs are blurred by a geometric disc adding the "
                     "same width instead of the pupil PSF (the real focus pair's shape)")
    return "".join(f"\n  Also: {note}." for note in notes)


def write_card(path: Path, weights: Path, info: dict) -> None:
    sha = sha256_of(weights)
    rows = "\n".join(f"| {kind} | {m['n']} | {m['input_psnr']:.2f} | {m['output_psnr']:.2f} | "
                     f"{m['input_ssim']:.4f} | {m['output_ssim']:.4f} |" for kind, m in info["test"].items())
    role = {"defocus": "DL_defocus: defocused -> sharp",
            "motion": "DL_motion: motion -> sharp, and mixed -> defocus only (then DL_defocus)",
            "mixed": "DL_mixed: mixed (motion and defocus) -> sharp",
            "all": "every blur type -> sharp, told the estimated PSF"}[info["blur"]]
    mixed_route = "DL_mixed" if info["arch"] == "fast" else "DL_motion then DL_defocus"
    routes = (f"in_focus untouched, defocus -> DL_defocus, motion -> DL_motion, mixed -> {mixed_route}"
              if info["blur"] != "all" else
              "in_focus untouched; defocus, motion and mixed -> this network, told the tile's estimated PSF "
              "(defocus width, motion length and direction)")
    directional = '"directional"' in info["architecture"]
    directional_note = "; each pair folded by its true direction" if directional else ""
    path.write_text(f"""# {info['arch']} deblurring network, {role} (`{weights.name}`)

Input and output: RGB in [0, 1], `(n, 3, y, x)`, any size, level-0 pixels of
the slide (trained at about 0.5 um/px). Routed by the blur classifier:
{routes}.

- **Architecture**: {info['architecture']}; {info['parameters']} parameters;
  {info['macs_per_pixel']:.0f} multiply-accumulates per pixel.
- **Training data**: {info['train_images']} real in-focus fields from `../shared/data`
  (H&E, IHC, Pap; licences in its `LICENSES/`): {info['n_train']} pairs of
  {info['crop']} px ({', '.join(TRAINING_KINDS[info['blur']])}), stain/illumination
  jitter, rescaling, rotations and flips, degraded by `wsi_deblur.blur.simulate`:
  pupil-function defocus adding a Gaussian-equivalent std of 1.2-6 px at NA 0.5-0.95,
  linear motion 5-40 px at any angle, Poisson-Gaussian noise (1000-20000 photons at
  full scale), JPEG 70-95 on 70%.{_data_options(info)}
  Built by {data_command(info)}.
- **Test data**: {info['n_test']} pairs of {info['test_crop']} px from {len(info['test_images'])} fields never
  used in training: {', '.join(info['test_images'])}.
- **Settings**: {info['settings']}.
- **Trained by**: `{info.get('command', f"python -m pipelines.train_restorer --arch {info['arch']} --blur {info['blur']}")}`
  ({info['train_seconds']:.0f} s on {info['machine']}).

## Metrics (held-out fields; against this network's own target{directional_note})

| kind | n | PSNR in (dB) | PSNR out (dB) | SSIM in | SSIM out |
|---|---|---|---|---|---|
{rows}

The full comparison (both architectures, the whole DBMID route, Richardson-Lucy
and Wiener baselines, per severity) is written by `python -m pipelines.evaluate_restorers`.

CPU speed of the network (fp32, channels-last, {info.get('threads', 2)} threads, this machine): {info['cpu_mpx_per_s']:.2f} Mpx/s.

sha256 of `{weights.name}`: `{sha}`
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=tuple(DEFAULTS), default="fast")
    parser.add_argument("--blur", choices=tuple(TRAINING_KINDS), required=True)
    parser.add_argument("--data", type=Path, default=Path("out/data/restore-128.npz"))
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--loss", choices=tuple(LOSSES),
                        help="default: l1 for fast, mse for dbmid (the paper's); l1+ssim trains on the evaluated SSIM")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="weights file, or a folder to write it in under its shipped name "
                        "(default: the package's models folder)")
    parser.add_argument("--directional", action=argparse.BooleanOptionalAction, default=None,
                        help="DL_motion is told the motion direction, folded into 0-45 degrees "
                             "(default: yes for fast; dbmid is blind, as in the paper)")
    parser.add_argument("--angle-jitter", type=float, default=5.0,
                        help="std (degrees) of the error added to the true direction of training pairs")
    parser.add_argument("--width-error", type=float, default=0.2,
                        help="bcr: std of the log-normal error on the defocus width and motion length it is told")
    parser.add_argument("--width-uncertainty", type=float, default=0.0,
                        help="bcr: filters on the OTF's moments over this log-normal width error (0: the OTF as told)")
    parser.add_argument("--defocus-model", choices=DEFOCUS_OTF_MODELS, default=DEFOCUS_OTF_MODELS[0],
                        help="bcr: the defocus PSF shape its OTFs are built from (disc: the real focus pair's)")
    parser.add_argument("--widths", type=int, nargs="+",
                        help="feature maps per level (fast: 32 96, or three levels, e.g. 32 96 96; "
                             "default: those of --init, else 32 96)")
    parser.add_argument("--init", type=Path, help="safetensors weights of the same architecture to start from "
                                                  "(fine-tuning; two-level fast weights may start a three-level "
                                                  "network, whose third level starts as a no-op); "
                                                  "default: random initialisation")
    args = parser.parse_args()
    if args.blur not in BLURS[args.arch]:
        parser.error(f"--arch {args.arch} trains {', '.join(BLURS[args.arch])}, not --blur {args.blur}")
    cfg = dict(DEFAULTS[args.arch])
    cfg.update({k: getattr(args, k) for k in ("steps", "batch", "lr", "loss", "directional")
                if getattr(args, k) is not None})
    directional = args.blur in DIRECTIONAL_BLURS and cfg["directional"]
    out_path = weights_out(args.out, MODELS / restorer_weights_name(args.arch, args.blur))

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    data = dict(np.load(args.data))
    blurred, target, kinds, params = select(data, "train", args.blur)
    test_blurred, test_target, test_kinds, test_params = select(data, "test", args.blur)
    widths = args.widths or (start_widths(args.init) if args.init is not None else None)
    net = build_network(args.arch, {"widths": widths, "directional": directional,
                                       "width_uncertainty": args.width_uncertainty,
                                       "defocus_model": args.defocus_model})
    init = start_weights(args.init)
    if args.init is not None:
        try:
            load_start_weights(net, load_file(str(args.init)))
        except ValueError as err:
            parser.error(f"--init {args.init}: {err}")
    t0 = time.perf_counter()

    def report(step: int, loss: float) -> None:
        if step % 100 == 0 or step == cfg["steps"] - 1:
            print(f"step {step} loss {loss:.5f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    fit_restorer(net, TrainingPairs(blurred, target, kinds, params),
                 Schedule(cfg["steps"], cfg["batch"], cfg["lr"], one_cycle=cfg["schedule"] == "one-cycle"), rng,
                 loss=cfg["loss"], noise=ConditionNoise(args.angle_jitter, args.width_error), on_step=report)
    train_seconds = time.perf_counter() - t0
    test_angles = pair_angles(test_kinds, test_params, np.random.default_rng(12), 0.0) if directional else None
    test_psf = pair_psf(test_kinds, test_params, np.random.default_rng(12), width_error=0.0,
                        direction_error_deg=0.0) if args.arch == "bcr" else None
    test = held_out_metrics(net, test_blurred, test_target, test_kinds, test_angles, test_psf)
    print(json.dumps(test))

    config = save_network(net, out_path, args.arch, blur=args.blur)
    info = {
        "arch": args.arch, "blur": args.blur, "architecture": json.dumps(config),
        "parameters": sum(p.numel() for p in net.parameters()), "macs_per_pixel": macs_per_pixel(net),
        "train_images": len(data["train_sources"]), "test_images": [str(s) for s in data["test_sources"]],
        "data": str(args.data), "data_pairs": int(len(data["train_kind"])),
        "data_command": str(data["command"]) if "command" in data else None,
        "n_train": int(len(blurred)), "crop": int(blurred.shape[1]), "n_test": int(len(test_blurred)),
        "test_crop": int(test_blurred.shape[1]), "test": test, "train_seconds": train_seconds,
        "settings": (f"{cfg['loss'].upper()} loss, Adam lr {cfg['lr']} ({cfg['schedule']}), "
                     f"{cfg['steps']} steps of {cfg['batch']}, seed {args.seed}"
                     + (f", folded by direction (direction jitter {args.angle_jitter} deg std)"
                        if directional else "")
                     + (f", told the PSF (widths off by {args.width_error} log-normal std, directions by "
                        f"{args.angle_jitter} deg std)" if args.arch == "bcr" else "")
                     + (f", starting from {init}" if init else "")),
        "command": command_line("pipelines.train_restorer"),
        "machine": machine(), "cpu_mpx_per_s": cpu_speed(net), "threads": args.threads,
    }
    write_card(out_path.with_suffix(".md"), out_path, info)
    out_path.with_suffix(".metrics.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {out_path} and its model card")


if __name__ == "__main__":
    main()
