"""What a model card records about how its weights came to be: machine, start weights, digests."""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from pathlib import Path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def start_weights(path: Path | None) -> str | None:
    """``"<name> (sha256 <first 16 hex>)"`` of the weights a fine-tune starts from, None when from scratch."""
    return None if path is None else f"{Path(path).name} (sha256 {sha256_of(path)[:16]})"


def machine() -> str:
    """``"<n> CPU cores (<model name>)"`` of this machine, as /proc/cpuinfo names it."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{len(os.sched_getaffinity(0))} CPU cores ({model})"


def command_line(module: str, argv: list[str] | None = None) -> str:
    """``"python -m <module> <arguments>"``: the command this process was started with (``sys.argv`` by default)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m", module, *([shlex.join(args)] if args else [])])
