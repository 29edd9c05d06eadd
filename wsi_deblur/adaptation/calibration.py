"""``calibrate``: where a site's tiles are called blurred, set from its own slides without ground truth.

BlurNet ranks blur well on tissue it never saw, but the probability at which
one depth of field of defocus crosses into "blurred" depends on the scanner,
the stain and the tissue. A site's slides say where it lies: their tiles
BlurNet is confident are in focus, blurred by one depth of field of
wave-optics defocus (a focal offset of 0.88 um at NA 0.75: a geometric blur
radius of 1 um) and classified again, give the probabilities such blur gets
there; the site's tiles called in focus give those its sharp tissue gets.
The threshold on P(blurred) is the highest that finds ``target_recall`` of the
degraded tiles, but never so low that more than ``max_false_alarms`` of the
site's in-focus tiles would be called blurred, and never above 0.5 (the
shipped decision) unless that bound requires it.

The result, ``detection.json`` (and a card, ``detection.md``), goes into a
weights folder: ``--weights`` then uses it for every slide (an explicit
``--blur-threshold`` still wins). Written under a temporary name and moved
into place when complete.

Examples
--------
>>> sharp = np.linspace(0.0, 0.2, 101)            # the site's in-focus tiles' P(blurred)
>>> degraded = np.linspace(0.3, 1.0, 100)         # the same tissue one depth of field out of focus
>>> round(choose_threshold(sharp, degraded), 3)   # finds 97% of the blur, flags no sharp tile
0.321
>>> round(choose_threshold(sharp, np.linspace(0.05, 1.0, 100)), 3)  # overlap: the false alarms decide
0.198
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from wsi_deblur._shared.options import check_fields, option
from wsi_deblur.errors import SlideError
from wsi_deblur.nets.files import DETECTION_FILE
from wsi_deblur.pipeline.options import READERS

#: The calibration's card beside its file (:data:`~wsi_deblur.nets.files.DETECTION_FILE`) in a weights folder.
DETECTION_CARD = "detection.md"
#: The decision without calibration: blurred when P(blurred) >= this (the most probable class, near enough).
SHIPPED_THRESHOLD = 0.5
#: Tiles BlurNet calls in focus with at least this probability are degraded.
CONFIDENT_IN_FOCUS = 0.95
#: The command whose flags an option is.
CALIBRATE = ("calibrate",)


@dataclass(frozen=True)
class CalibrateOptions:
    """How ``calibrate`` samples and degrades a site's tiles.

    Attributes
    ----------
    max_tiles : int
        Confidently in-focus tiles degraded, over all slides.
    defocus_um : float
        Focal offset of the blur that must be found (um): one depth of field at NA 0.75.
    numerical_aperture : float
        Of the wave-optics defocus model.
    target_recall : float
        Share of the degraded tiles the threshold must find.
    max_false_alarms : float
        Most share of the site's in-focus tiles the threshold may call blurred.
    mpp : float, optional
        Pixel size of slides whose files lack one.
    reader : str
    both_scales : bool
        Set the threshold on probabilities of both scales, as ``qc --both-scales`` decides (a 40x slide's
        tiles at the working pixel size and at their own; the degraded tiles are defocused at their own
        pixels, then judged at both).
    seed : int
    """

    max_tiles: int = option(256, "confidently in-focus tiles degraded, over all slides", kind="count", low=8,
                            high=10_000, groups=CALIBRATE)
    defocus_um: float = option(0.88, "focal offset to find, um (one depth of field at NA 0.75)", kind="positive",
                               groups=CALIBRATE)
    numerical_aperture: float = option(0.75, "numerical aperture of the defocus model", kind="open_share",
                                       groups=CALIBRATE)
    target_recall: float = option(0.97, "share of the degraded tiles to find", kind="open_share", groups=CALIBRATE)
    max_false_alarms: float = option(0.01, "most share of the site's in-focus tiles called blurred",
                                     kind="open_share", groups=CALIBRATE)
    mpp: float | None = option(None, "micrometres per pixel, for files without one", kind="mpp", groups=CALIBRATE)
    reader: str = option("auto", "force a reader", kind="choice", choices=READERS, groups=CALIBRATE)
    both_scales: bool = option(False, "set the threshold for qc --both-scales (a 40x slide's tiles judged at "
                                      "both pixel sizes)", kind="flag", groups=CALIBRATE)
    seed: int = option(0, "seed of the sampling and the noise", kind="count", low=0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class Calibration:
    """What ``calibrate`` found: the threshold and the figures it rests on."""

    threshold: float
    recall: float
    false_alarms: float
    shipped_recall: float
    in_focus_tiles: int
    degraded_tiles: int
    options: dict
    slides: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def choose_threshold(sharp: np.ndarray, degraded: np.ndarray, *, target_recall: float = 0.97,
                     max_false_alarms: float = 0.01, shipped: float = SHIPPED_THRESHOLD) -> float:
    """The threshold on P(blurred) (``p >= t`` is blurred) from the site's in-focus and degraded tiles' P.

    The highest ``t`` at most ``shipped`` that finds ``target_recall`` of
    ``degraded``, raised where the two disagree to the ``1 - max_false_alarms``
    quantile of ``sharp`` (interpolated: a few mildly blurred tiles among a
    small slide's "in focus" ones do not set it alone).
    """
    sharp, degraded = np.sort(np.asarray(sharp, float)), np.sort(np.asarray(degraded, float))
    if not degraded.size:
        raise ValueError("no degraded tiles to calibrate on")
    missed = int(np.floor((1.0 - target_recall) * degraded.size))  # may fall below t
    t = min(float(degraded[missed]), shipped)
    if sharp.size:
        t = max(t, float(np.quantile(sharp, 1.0 - max_false_alarms)))
    return t


def degrade_one_depth(windows: np.ndarray, mpp: float, options: CalibrateOptions,
                      rng: np.random.Generator) -> np.ndarray:
    """``windows`` (uint8, at ``mpp``) defocused by ``options.defocus_um`` with camera noise, uint8."""
    from wsi_deblur.blur.simulate import Optics, add_sensor_noise, convolve_rgb, defocus_psf_optics

    psf = defocus_psf_optics(options.defocus_um, Optics(numerical_aperture=options.numerical_aperture, mpp=mpp))
    out = np.empty_like(windows)
    for n, window in enumerate(windows):
        blurred = convolve_rgb(window.astype(np.float32), psf)
        out[n] = np.clip(np.rint(add_sensor_noise(blurred, rng, photons=5000.0)), 0, 255)
    return out


def calibrate(paths: list[str], out: str | Path, options: CalibrateOptions = CalibrateOptions(), *,
              on_error=None, on_progress=None) -> Calibration:
    """Calibrate the blurred-or-not decision on the slides at ``paths``; write ``out/detection.json`` and its card.

    The classifier is BlurNet from ``out`` when it holds one (a folder ``adapt``
    wrote), else the shipped one. A slide that cannot be read goes to
    ``on_error(SlideError)`` and is left out (raised without ``on_error``).
    """
    from wsi_deblur.classify.by_name import make_classifier
    from wsi_deblur.nets.files import CLASSIFIER_WEIGHTS

    out = Path(out)
    weights = str(out) if (out / CLASSIFIER_WEIGHTS).is_file() else None
    classifier = make_classifier("neural", threads=2, weights_dir=weights, blur_threshold=SHIPPED_THRESHOLD,
                                 both_scales=options.both_scales)
    rng = np.random.default_rng(options.seed)
    quota = -(-options.max_tiles // max(1, len(paths)))
    sharp_p, degraded_p, slides = [], [], []
    for path in paths:
        try:
            p_tissue, p_degraded = _slide_probabilities(path, classifier, weights, options, quota, rng)
        except SlideError as exc:
            if on_error is None:
                raise
            on_error(exc)
            slides.append({"name": Path(path).name, "error": str(exc)})
            continue
        in_focus = p_tissue[p_tissue < SHIPPED_THRESHOLD]
        sharp_p.append(in_focus)
        degraded_p.append(p_degraded)
        slides.append({"name": Path(path).name, "tissue_tiles": int(p_tissue.size),
                       "in_focus_tiles": int(in_focus.size), "degraded_tiles": int(p_degraded.size)})
        if on_progress:
            on_progress(f"{Path(path).name}: {in_focus.size} in-focus tiles, {p_degraded.size} degraded")
    sharp = np.concatenate(sharp_p) if sharp_p else np.zeros(0)
    degraded = np.concatenate(degraded_p) if degraded_p else np.zeros(0)
    if not degraded.size:
        raise ValueError("no slide gave confidently in-focus tissue to calibrate on")
    t = choose_threshold(sharp, degraded, target_recall=options.target_recall,
                         max_false_alarms=options.max_false_alarms)
    result = Calibration(
        threshold=round(t, 6), recall=round(float((degraded >= t).mean()), 4),
        false_alarms=round(float((sharp >= t).mean()) if sharp.size else 0.0, 4),
        shipped_recall=round(float((degraded >= SHIPPED_THRESHOLD).mean()), 4),
        in_focus_tiles=int(sharp.size), degraded_tiles=int(degraded.size),
        options=asdict(options), slides=slides)
    _write(out, result)
    return result


def _slide_probabilities(path: str, classifier, weights: str | None, options: CalibrateOptions, quota: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """P(blurred) of every tissue tile of the slide, and of up to ``quota`` confident in-focus ones degraded."""
    from wsi_deblur.adaptation.site_tiles import pick_rows, read_windows
    from wsi_deblur.pipeline.options import RunOptions
    from wsi_deblur.pipeline.slide_job import compute_blurmap, open_for_processing
    from wsi_deblur.working_scale import working_downsample

    run = RunOptions(mpp=options.mpp, reader=options.reader, blur_threshold=SHIPPED_THRESHOLD,
                     weights=weights, both_scales=options.both_scales)
    slide = open_for_processing(path, run)
    blurmap = compute_blurmap(slide, run).blurmap
    p_tissue = blurmap.blur_probability[blurmap.is_tissue].astype(float)
    confident = pick_rows(np.argwhere(blurmap.is_tissue & (blurmap.blur_probability <= 1.0 - CONFIDENT_IN_FOCUS)),
                          quota, rng)
    if not len(confident):
        return p_tissue, np.zeros(0)
    factor = working_downsample(slide.mpp)
    tiles = [tuple(ij) for ij in confident]
    if options.both_scales and factor > 1:  # defocused at its own pixels, then judged as qc --both-scales does
        from wsi_deblur.classify.tiles import classify_pixels

        halo = blurmap.grid.halo
        native = degrade_one_depth(read_windows(slide, blurmap.grid, tiles, 1), slide.mpp, options, rng)
        estimates = classify_pixels(classifier, native[:, halo:native.shape[1] - halo, halo:native.shape[2] - halo],
                                    factor, slide.mpp)
    else:
        degraded = degrade_one_depth(read_windows(slide, blurmap.grid, tiles, factor), slide.mpp * factor,
                                     options, rng)
        halo = blurmap.grid.halo // factor
        estimates = classifier.classify(degraded[:, halo:degraded.shape[1] - halo, halo:degraded.shape[2] - halo])
    return p_tissue, np.array([1.0 - e.probabilities["in_focus"] for e in estimates])


def _write(out: Path, result: Calibration) -> None:
    """``detection.json`` and ``detection.md`` into ``out``, each under a temporary name first."""
    out.mkdir(parents=True, exist_ok=True)
    o = result.options
    scales = (" judged at both pixel sizes (`qc --both-scales`, which this threshold is for)"
              if o.get("both_scales") else "")
    card = (f"# Blur decision calibrated on this site's slides\n\n"
            f"A tile is called blurred when P(blurred){scales} >= **{result.threshold:.4f}** (shipped: "
            f"{SHIPPED_THRESHOLD}).\n\n"
            f"- {result.degraded_tiles} tiles BlurNet called in focus with P >= {CONFIDENT_IN_FOCUS}, defocused "
            f"by {o['defocus_um']} um (wave optics, NA {o['numerical_aperture']}): found {result.recall:.1%} "
            f"(shipped decision: {result.shipped_recall:.1%}); target {o['target_recall']:.0%}.\n"
            f"- {result.in_focus_tiles} tissue tiles called in focus: {result.false_alarms:.1%} of them would now "
            f"be called blurred (at most {o['max_false_alarms']:.0%}).\n"
            f"- Slides: " + ", ".join(f"`{s['name']}`" + (" (not used)" if "error" in s else "")
                                        for s in result.slides) + "\n\n"
            f"Made by `wsi-deblur calibrate`; `--weights {out}` uses it (`--blur-threshold` overrides it).\n")
    for name, text in ((DETECTION_CARD, card), (DETECTION_FILE, result.to_json())):
        partial = out / f".{name}.partial"
        partial.write_text(text)
        partial.replace(out / name)
