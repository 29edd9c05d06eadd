"""``adaptation.md``: the model card of an adapted weights folder, from ``adaptation.json``'s figures."""

from __future__ import annotations

from pathlib import Path

from wsi_deblur.nets.provenance import machine, sha256_of

TITLES = {"defocus": "DL_defocus", "motion": "DL_motion", "mixed": "DL_mixed", "classifier": "BlurNet"}


def _fmt(value, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _entry(rows: list, k: int, key: str):
    """``rows[k - 1][key]`` (the k-th iteration's figure), or None when there are fewer rows."""
    return rows[k - 1][key] if len(rows) >= k else None


def _restorer_row(name: str, e: dict) -> str:
    held = e.get("held_out") or {}
    s, a = held.get("shipped") or {}, held.get("adapted") or {}
    k = e.get("iterations", 1)
    down = e.get("one_level_down") or {}
    down_shipped, down_adapted = down.get("shipped") or [], down.get("adapted") or []
    scanned = e.get("scanned_blur") or {}
    sharp_shipped, sharp_adapted = scanned.get("shipped") or [], scanned.get("adapted") or []
    cells = [TITLES[name], "yes" if e["kept"] else "no", str(e["simulated_pairs"]), str(e["further_degraded_pairs"]),
             _fmt(s.get("ssim_gain"), "+.4f"), _fmt(a.get("ssim_gain"), "+.4f"),
             _fmt(_entry(down_shipped, 1, "input_ssim")), _fmt(_entry(down_shipped, 1, "ssim")),
             _fmt(_entry(down_adapted, k, "ssim")),
             _fmt(_entry(sharp_shipped, 1, "input_sharpness"), ".2f"),
             _fmt(_entry(sharp_shipped, 1, "sharpness"), ".2f"), _fmt(_entry(sharp_adapted, k, "sharpness"), ".2f"),
             str(k), e.get("reason", "")]
    return "| " + " | ".join(cells) + " |"


def write_card(path: str | Path, report: dict) -> None:
    """Write the card for ``report`` (what :func:`wsi_deblur.adaptation.job.adapt` measured) at ``path``.

    The sha256 of each kept network is read from the file beside the card.
    """
    path = Path(str(path))
    o = report["options"]
    sources = "\n".join(
        f"- `{s['name']}`: " + (f"not used ({s['error']})" if "error" in s else
                                f"sha256 `{s['sha256'] or 'n/a (a folder)'}`, {s['mpp']} um/px, "
                                f"{s['tissue_tiles']} tissue tiles ({s['in_focus_tiles']} in focus, "
                                f"{s['blurred_tiles']} blurred); sampled {s['sampled_sharp']} in focus, "
                                f"{s['sampled_blurred']} blurred")
        for s in report["sources"])
    nets = report["networks"]
    rows = "\n".join(_restorer_row(n, nets[n]) for n in ("defocus", "motion", "mixed"))
    c = nets["classifier"]
    held = c.get("held_out") or {}
    cs, ca = held.get("shipped") or {}, held.get("adapted") or {}
    digests = "\n".join(f"- `{e['file']}`: `{sha256_of(path.parent / e['file'])}`"
                        for e in nets.values() if e["kept"] and (path.parent / e["file"]).is_file())
    t = report["tiles"]
    path.write_text(f"""# Adapted weights

Fine-tuned from the shipped weights by `wsi-deblur adapt` on this site's own
slides, without ground truth: in-focus tiles degraded by the simulator, and
(DeepContrast) the blurred tiles degraded further at their estimated blur and
learnt back to themselves as scanned. Only the networks that did at least as
well as the shipped ones on tiles held back from training are in this folder;
`--weights` runs the shipped network for the others.

## Source slides

{sources}

Tiles: {t['in_focus']} in focus and {t['blurred']} blurred windows of {t['window_px']} px at
{t['mpp']:.3f} um/px; {t['held_out_in_focus']} and {t['held_out_blurred']} of them held back.

## Settings

{o['steps']} steps per network (batch {o['batch']}, BlurNet {2 * o['batch']}), one-cycle Adam peaking at
{o['lr']}, L1 + SSIM for the restorers; {o['pairs']} simulated pairs per network and up to {o['pairs'] // 2}
further-degraded ones, {o['crop']} px crops; seed {o['seed']}. {report['seconds']:.0f} s on {machine()}.

## Restorers, shipped against adapted

- *SSIM gain*: on simulated blur of the held-back in-focus tiles (output SSIM
  minus input SSIM against the sharp tile).
- *One level down*: the held-back *scanned* blurred tiles of that type blurred
  again at their estimated blur; SSIM to themselves as scanned, degraded and
  restored (the adapted network applied its chosen iterations).
- *Sharpness*: mean gradient magnitude of those scanned tiles as scanned and
  restored (after the consistency guard).
- *Iterations*: how many times the adapted network is applied (DeepContrast's
  stopping rule: while one level down gains SSIM and the guard rejects no
  more windows than after the first).

| network | kept | simulated pairs | further-degraded pairs | SSIM gain, shipped | SSIM gain, adapted | one level down, degraded | shipped | adapted | sharpness, scanned | shipped | adapted | iterations | why |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{rows}

## BlurNet, shipped against adapted

| | shipped | adapted |
|---|---|---|
| 4-class accuracy (simulated, held back) | {_fmt(cs.get('accuracy'), '.1%')} | {_fmt(ca.get('accuracy'), '.1%')} |
| blurred-or-not accuracy | {_fmt(cs.get('blurred_or_not_accuracy'), '.1%')} | {_fmt(ca.get('blurred_or_not_accuracy'), '.1%')} |
| held-back in-focus tiles called blurred | {_fmt(cs.get('false_alarms'), '.1%')} | {_fmt(ca.get('false_alarms'), '.1%')} |

Kept: {'yes' if c['kept'] else 'no'} ({c.get('reason', '')}).

## sha256

{digests or '(no network was kept: the shipped ones stay in use)'}
""")
