"""Where the real data of ``../shared/data`` is, for pipelines, benchmarks and tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def find_shared_data() -> Path | None:
    """``$WSI_DEBLUR_SHARED_DATA`` or ``../shared/data`` beside the checkout; None if neither exists."""
    env = os.environ.get("WSI_DEBLUR_SHARED_DATA")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None
