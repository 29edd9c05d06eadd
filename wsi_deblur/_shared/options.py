"""Options declared once: a dataclass field says its default, its allowed values, its help and its flag.

:class:`~wsi_deblur.pipeline.options.RunOptions` and
:class:`~wsi_deblur.adaptation.job.AdaptOptions` declare their fields with
:func:`option`; :func:`check_fields` checks an instance against them (one
:class:`~wsi_deblur.errors.OptionError` naming the field), and the CLI builds
its flags from them (:func:`add_arguments`) and the options from the parsed
flags (:func:`from_arguments`), so a default, a range or a help text is
written in one place.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo:
...     size: int = option(512, "tile edge in pixels", kind="pixels", low=64)
...     share: float = option(0.25, "tissue share", kind="share")
...     def __post_init__(self):
...         check_fields(self)
>>> Demo(size=32)
Traceback (most recent call last):
...
wsi_deblur.errors.OptionError: size must be a whole number of pixels of at least 64, not 32
>>> Demo(share=25)
Traceback (most recent call last):
...
wsi_deblur.errors.OptionError: share is a share in [0, 1], not 25 (25 -> 0.25?)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wsi_deblur.errors import OptionError, check_choice

#: Pixel sizes (micrometres) an option accepts: a 40x scan is about 0.25, a 1.25x overview about 8.
MPP_RANGE = (0.0, 100.0)


@dataclass(frozen=True)
class OptionSpec:
    """What an option field declares (its ``metadata["option"]``)."""

    help: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    groups: tuple[str, ...] = ()
    metavar: str | None = None

    def allowed(self) -> Sequence[str]:
        return self.choices() if callable(self.choices) else (self.choices or ())


def option(default: Any, help: str, *, kind: str, low: float | None = None, high: float | None = None,
           choices: Sequence[str] | Callable[[], Sequence[str]] | None = None, groups: Sequence[str] = (),
           metavar: str | None = None) -> Any:
    """A dataclass field with its check and its command-line flag.

    Parameters
    ----------
    default
        The default value.
    help : str
        What it is, for ``--help`` (its default is added there).
    kind : str
        One of :data:`CHECKS`: how the value is checked.
    low, high : float, optional
        Smallest and largest allowed values (``pixels``, ``count``; no largest if not given).
    choices : sequence or callable, optional
        Allowed values of a ``choice`` (a callable: looked up when first needed).
    groups : sequence of str
        Which commands offer it as a flag, ``--<name>`` (none: no flag; a ``flag`` kind whose default is True
        is offered as ``--no-<name>``).
    metavar : str, optional
        What ``--help`` shows for the value (default the name in capitals).
    """
    if kind not in CHECKS:
        raise ValueError(f"unknown option kind {kind!r}")
    spec = OptionSpec(help, kind, low, high, choices, tuple(groups), metavar)
    return dataclasses.field(default=default, metadata={"option": spec})


def option_specs(cls_or_obj: Any) -> list[tuple[dataclasses.Field, OptionSpec]]:
    """The declared option fields of a dataclass (or instance), in order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls_or_obj) if "option" in f.metadata]


def _whole_in(value: Any, low: float, high: float | None) -> bool:
    whole = isinstance(value, int) and not isinstance(value, bool)
    return whole and value >= low and (high is None or value <= high)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _pixels(name: str, value: Any, spec: OptionSpec) -> str | None:
    if not _whole_in(value, spec.low, None):
        return f"{name} must be a whole number of pixels of at least {spec.low:g}, not {value!r}"


def _count(name: str, value: Any, spec: OptionSpec) -> str | None:
    if not _whole_in(value, spec.low, spec.high):
        most = "" if spec.high is None else f" and at most {spec.high:g}"
        return f"{name} must be a whole number of at least {spec.low:g}{most}, not {value!r}"


def _share(name: str, value: Any, spec: OptionSpec) -> str | None:
    open_interval = spec.kind == "open_share"
    inside = _is_number(value) and (0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0)
    if not inside:
        hint = f" ({value:g} -> {value / 100:g}?)" if _is_number(value) and 1.0 < value <= 100.0 else ""
        return f"{name} is a share in {'(0, 1)' if open_interval else '[0, 1]'}, not {value!r}{hint}"


def _probability(name: str, value: Any, spec: OptionSpec) -> str | None:
    if value is not None:
        return _share(name, value, OptionSpec(spec.help, "open_share"))


def _percent(name: str, value: Any, spec: OptionSpec) -> str | None:
    if not _whole_in(value, 1, 100):
        return f"{name} must be in 1-100, not {value!r}"


def _positive(name: str, value: Any, spec: OptionSpec) -> str | None:
    if not (_is_number(value) and value > 0):
        return f"{name} must be a positive number, not {value!r}"


def _mpp(name: str, value: Any, spec: OptionSpec) -> str | None:
    if value is not None and not (_is_number(value) and MPP_RANGE[0] < value < MPP_RANGE[1]):
        return f"{name} must be a pixel size in micrometres (0.25 for a 40x scan), not {value!r}"


def _choice(name: str, value: Any, spec: OptionSpec) -> str | None:
    check_choice(name, value, spec.allowed())  # raises with "did you mean"


def _flag_value(name: str, value: Any, spec: OptionSpec) -> str | None:
    if not isinstance(value, bool):
        return f"{name} must be True or False, not {value!r}"


def _path(name: str, value: Any, spec: OptionSpec) -> str | None:
    if value is not None and not isinstance(value, str):
        return f"{name} must be a path or name (text), not {value!r}"


#: The check of each kind: the message for a value it refuses, else None.
CHECKS: dict[str, Callable[[str, Any, OptionSpec], str | None]] = {
    "pixels": _pixels, "count": _count, "share": _share, "open_share": _share, "probability": _probability,
    "percent": _percent,
    "positive": _positive, "mpp": _mpp, "choice": _choice, "flag": _flag_value, "path": _path,
}


def check_value(name: str, value: Any, spec: OptionSpec) -> None:
    """Raise :class:`~wsi_deblur.errors.OptionError` naming ``name`` unless ``value`` is allowed by ``spec``."""
    message = CHECKS[spec.kind](name, value, spec)
    if message:
        raise OptionError(message)


def check_fields(obj: Any) -> None:
    """Check every declared option of a dataclass instance (the first that fails raises)."""
    for f, spec in option_specs(obj):
        check_value(f.name, getattr(obj, f.name), spec)


def _flag(f: dataclasses.Field, spec: OptionSpec) -> str:
    stem = f.name.replace("_", "-")
    return f"--no-{stem}" if spec.kind == "flag" and f.default is True else f"--{stem}"


def add_arguments(parser: argparse.ArgumentParser, cls: type, group: str) -> None:
    """Add a flag to ``parser`` for every option of ``cls`` offered in ``group``, with its default in its help."""
    for f, spec in option_specs(cls):
        if group not in spec.groups:
            continue
        flag, dest = _flag(f, spec), f"option_{f.name}"
        if spec.kind == "flag":
            action = "store_false" if f.default is True else "store_true"
            parser.add_argument(flag, dest=dest, action=action, default=f.default, help=spec.help)
            continue
        kwargs: dict[str, Any] = {"dest": dest, "default": f.default, "metavar": spec.metavar or f.name.upper()}
        if spec.kind == "choice":
            kwargs["choices"] = Choices(spec.allowed())
            kwargs["metavar"] = spec.metavar or "{" + ",".join(spec.allowed()) + "}"
        elif spec.kind in ("pixels", "count", "percent"):
            kwargs["type"] = int
        elif spec.kind != "path":
            kwargs["type"] = float
        shown = "" if f.default is None else f" (default {f.default})"
        parser.add_argument(flag, help=spec.help + shown, **kwargs)


class Choices(tuple):
    """argparse ``choices`` that accept anything: the option's own check refuses a bad value with "did you mean"
    (argparse would exit with its list instead), after the flags are parsed.
    """

    def __contains__(self, value: object) -> bool:
        return True


def from_arguments(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """``cls`` from the flags :func:`add_arguments` added (those the parser has), and ``fixed`` values."""
    given = {f.name: getattr(args, f"option_{f.name}") for f, _ in option_specs(cls)
             if hasattr(args, f"option_{f.name}")}
    return cls(**{**given, **fixed})


def choice_flag(values: Sequence[str]) -> dict[str, Any]:
    """``add_argument`` keywords for a flag taking one of ``values``, refused later with "did you mean"."""
    return {"choices": Choices(values), "metavar": "{" + ",".join(values) + "}"}
