"""What a training pipeline's model card records: the command, the start weights (and the machine, digests)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from wsi_deblur.nets.provenance import machine, sha256_of  # noqa: F401 (the pipelines import them from here)


def start_weights(path: Path | None) -> str | None:
    """``"<name> (sha256 <first 16 hex>)"`` of the weights a fine-tune starts from, None when from scratch."""
    return None if path is None else f"{Path(path).name} (sha256 {sha256_of(path)[:16]})"


def command_line(module: str, argv: list[str] | None = None) -> str:
    """``"python -m <module> <arguments>"``: the command this process was started with (``sys.argv`` by default)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m", module, *([shlex.join(args)] if args else [])])


def weights_out(out: Path | None, default: Path) -> Path:
    """Where a training pipeline writes its weights, settled before it trains: ``default`` when no
    ``--out``, inside ``out`` under ``default``'s name when it is a folder; the file's folder made now.

    A training run is minutes to hours; a path it cannot write must stop it at the start, not at the end.
    """
    path = default if out is None else (out / default.name if out.is_dir() else out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"--out {out}: cannot make folder {path.parent}: {exc.strerror}") from exc
    return path
