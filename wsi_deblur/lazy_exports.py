"""Packages whose public names are imported on first use: importing them (and ``wsi-deblur --help``) is cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` and ``__all__`` for ``package``, whose ``names`` live in the given modules.

    A module is named relative to ``package`` (``"base"``) or in full
    (``"wsi_deblur.io"``).

    Examples
    --------
    >>> __getattr__, __all__ = lazy_exports("wsi_deblur.restore", {"Restorer": "base"})
    >>> __getattr__("Restorer").__name__, __all__
    ('Restorer', ['Restorer'])
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = names[name] if "." in names[name] else f"{package}.{names[name]}"
        return getattr(importlib.import_module(module), name)

    return __getattr__, sorted(names)
