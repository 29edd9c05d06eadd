"""Train BlurNet, the blur type and severity classifier, and write its model card.

    python -m pipelines.blur_data --out out/data/blur-128.npz        # the data (once)
    python -m pipelines.train_classifier --data out/data/blur-128.npz
    # fine-tune on the pipeline's 256-px crops, from the weights above:
    python -m pipelines.blur_data --out out/data/blur-256.npz --size 256 --n-train 16000 --n-test 2000
    python -m pipelines.train_classifier --data out/data/blur-256.npz --init W --batch 32 ...

Crops of real in-focus fields (../shared/data) degraded by the simulator
(wsi_deblur.blur.simulate); the test split comes from fields never seen in
training. Loss: cross-entropy on the class, smooth L1 on the severities
(defocus distance for all, motion length for all, motion direction for motion
and mixed). Adam, cosine learning rate, fixed seeds. Writes the weights as
safetensors (with the config in its metadata) and a Markdown model card with
the test metrics and the file's sha256.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from pipelines.provenance import command_line, machine, sha256_of, start_weights, weights_out
from wsi_deblur.blur.degrade import DEFOCUS_MIN_SIGMA_PX, SHARP_MAX_SIGMA_PX, unambiguous
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.nets.blurnet import DEFOCUS_SCALE_UM, MOTION_SCALE_PX, BlurNet, macs_per_pixel
from wsi_deblur.nets.files import save_network
from wsi_deblur.nets.runtime import load_blurnet
from wsi_deblur.training.batches import to_tensor
from wsi_deblur.training.loops import Schedule, fit_blurnet

MODELS = Path(__file__).resolve().parents[1] / "wsi_deblur" / "models"


def confusion_matrix(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """4 x 4 counts: row = true class, column = predicted class (order of ``BLUR_CLASSES``)."""
    return np.bincount(4 * np.asarray(labels) + np.asarray(pred), minlength=16).reshape(4, 4)


def accuracy_per_field(pred: np.ndarray, labels: np.ndarray, fields: np.ndarray, sources: list[str]) -> dict:
    """``{source: {"accuracy", "n"}}`` for crops whose source field index is ``fields``."""
    return {str(sources[i]): {"accuracy": float((pred[fields == i] == labels[fields == i]).mean()),
                              "n": int((fields == i).sum())} for i in np.unique(fields)}


@torch.no_grad()
def evaluate(net: BlurNet, images: np.ndarray, labels: np.ndarray, severity: np.ndarray,
             batch: int = 256, *, fields: np.ndarray | None = None, sources: list[str] | None = None) -> dict:
    """Accuracy, confusion and severity errors; per source field too when ``fields`` indexes ``sources``."""
    net.eval()
    outs = [net(to_tensor(images[i:i + batch])) for i in range(0, len(images), batch)]
    out = torch.cat(outs).numpy()
    pred = out[:, :4].argmax(1)
    defocus_err = np.abs(np.clip(out[:, 4], 0, None) * DEFOCUS_SCALE_UM - severity[:, 0])
    length_err = np.abs(np.clip(out[:, 5], 0, None) * MOTION_SCALE_PX - severity[:, 1])
    angle = (np.degrees(np.arctan2(out[:, 7], out[:, 6])) / 2) % 180
    angle_err = np.abs((angle - severity[:, 2] + 90) % 180 - 90)
    blurred_defocus = np.isin(labels, [1, 3])
    moving = np.isin(labels, [2, 3])
    per_field = accuracy_per_field(pred, labels, fields, sources) if fields is not None and sources else {}
    net.train()
    return {
        "accuracy": float((pred == labels).mean()),
        "per_field": per_field,
        "confusion": confusion_matrix(labels, pred).tolist(),
        "defocus_um_mae": float(defocus_err[blurred_defocus].mean()),
        "motion_length_px_mae": float(length_err[moving].mean()),
        "motion_angle_deg_mae": float(angle_err[moving].mean()),
        "n": int(len(labels)),
    }


def cpu_speed(net: BlurNet, size: int = 256, batch: int = 16) -> dict:
    """Milliseconds per ``size``-px crop on this CPU: fp32 and bf16 autocast, one thread."""
    torch.set_num_threads(1)
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    net = net.eval()
    out = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            net(x)
            t0 = time.perf_counter()
            for _ in range(5):
                net(x)
        out[f"ms_per_{size}px_crop_{name}"] = (time.perf_counter() - t0) / (5 * batch) * 1e3
    return out


def write_card(path: Path, weights: Path, info: dict) -> None:
    sha = sha256_of(weights)
    m = info["test"]
    crops_note = f", on the crops of `{info['data_command']}`" if info.get("data_command") else ""
    rows = "\n".join(f"| {BLUR_CLASSES[i]} | " + " | ".join(str(v) for v in row) + " |"
                     for i, row in enumerate(m["confusion"]))
    per_field = ""
    if m.get("per_field"):
        per_field = ("\nAccuracy per held-out field (the errors gather on sparse or soft content):\n\n"
                     "| field | crops | accuracy |\n|---|---|---|\n"
                     + "".join(f"| {k} | {v['n']} | {v['accuracy']:.1%} |\n" for k, v in m["per_field"].items()))
    path.write_text(f"""# BlurNet blur classifier (`{weights.name}`)

Tells the blur of a tile: in_focus, defocus, motion or mixed, with severity
(defocus distance in micrometres, motion length in pixels and direction).
Input: RGB at about 0.5 um/px (the pipeline block-averages finer scans), any
size; the pipeline gives it the most textured 256-px crop of each tile.

- **Architecture**: {info['architecture']}; {info['parameters']} parameters;
  {info['macs_per_pixel']:.0f} multiply-accumulates per input pixel.
- **Training data**: {info['train_images']} real in-focus fields from `../shared/data`
  (H&E, IHC, Pap; licences in its `LICENSES/`), {info['n_train']} random crops of
  {info['crop']} px, stain/illumination jitter, rescaling, rotations and flips,
  degraded by `wsi_deblur.blur.simulate`: pupil-function defocus 0-0.5 um (in
  focus) or 1.5-8 um at NA 0.5-0.95; linear motion 5-40 px at any angle;
  mixed = both (motion at least twice the defocus disc radius); Poisson-Gaussian
  noise; JPEG quality 70-95 on 70% of crops. Labels are kept only where the blur
  the optics add agrees with them: in focus and motion add a Gaussian-equivalent
  std <= {SHARP_MAX_SIGMA_PX} px, defocus and mixed >= {DEFOCUS_MIN_SIGMA_PX} px (at 0.5 um/px).
- **Test data**: {m['n']} crops from {len(info['test_images'])} fields never used in
  training: {', '.join(info['test_images'])}.
- **Settings**: {info['settings']}.
- **Trained by**: `{info['command']}` ({info['train_seconds']:.0f} s on {info['machine']}){crops_note}.

## Metrics (held-out fields)

4-class accuracy: **{m['accuracy']:.2%}**. Defocus distance MAE {m['defocus_um_mae']:.2f} um
(defocus and mixed); motion length MAE {m['motion_length_px_mae']:.1f} px and direction MAE
{m['motion_angle_deg_mae']:.1f} deg (motion and mixed).

| true \\ predicted | in_focus | defocus | motion | mixed |
|---|---|---|---|---|
{rows}
{per_field}
CPU speed (one thread, this machine): {info['speed']['ms_per_256px_crop_fp32']:.2f} ms per 256-px crop in fp32,
{info['speed']['ms_per_256px_crop_bf16']:.2f} ms with bf16 autocast.

sha256 of `{weights.name}`: `{sha}`
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("out/data/blur-128.npz"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="weights file, or a folder to write it in under its shipped name "
                        "(default: the package's models folder)")
    parser.add_argument("--init", type=Path, help="safetensors BlurNet weights to start from (fine-tuning); "
                                                  "default: random initialisation")
    args = parser.parse_args()
    args.out = weights_out(args.out, MODELS / "blur_classifier.safetensors")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    data = dict(np.load(args.data))
    for split in ("train", "test"):  # keep crops whose label matches the blur they show
        threshold = float(data.get(f"{split}_min_defocus_sigma_px", DEFOCUS_MIN_SIGMA_PX))
        keep = unambiguous(data[f"{split}_labels"], data[f"{split}_severity"], min_defocus_sigma_px=threshold)
        print(f"{split}: {keep.sum()} of {keep.size} crops unambiguous")
        for key in ("images", "labels", "severity", "fields"):
            if f"{split}_{key}" in data:  # field indices: data sets made since per-field metrics
                data[f"{split}_{key}"] = data[f"{split}_{key}"][keep]
    images, labels, severity = data["train_images"], data["train_labels"], data["train_severity"]
    net = BlurNet()
    init = start_weights(args.init)
    if args.init is not None:
        net = copy.deepcopy(load_blurnet(str(args.init))[0]).train()  # its architecture, from its metadata
    t0 = time.perf_counter()

    def report(step: int, loss: float) -> None:
        if step % 250 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    fit_blurnet(net, images, labels, severity, Schedule(args.steps, args.batch, args.lr), rng, on_step=report)
    train_seconds = time.perf_counter() - t0
    sources = [str(v) for v in data["test_sources"]]
    test = evaluate(net, data["test_images"], data["test_labels"], data["test_severity"],
                    fields=data.get("test_fields"), sources=sources)
    print(json.dumps(test))

    config = save_network(net, args.out, "blurnet")
    info = {
        "architecture": "BlurNet " + json.dumps(config), "parameters": sum(p.numel() for p in net.parameters()),
        "macs_per_pixel": macs_per_pixel(net), "train_images": len(data["train_sources"]),
        "test_images": sources, "n_train": int(len(labels)),
        "crop": int(images.shape[1]), "test": test, "train_seconds": train_seconds,
        "settings": (f"Adam, one-cycle lr max {args.lr}, {args.steps} steps of {args.batch}, seed {args.seed}"
                     + (f", starting from {init}" if init else "")),
        "command": command_line("pipelines.train_classifier"),
        "machine": machine(), "speed": cpu_speed(net),
        "data_command": str(data["command"]) if "command" in data else None,
    }
    write_card(args.out.with_suffix(".md"), args.out, info)
    args.out.with_suffix(".metrics.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {args.out} and its model card")


if __name__ == "__main__":
    main()
