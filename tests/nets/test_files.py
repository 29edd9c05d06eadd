"""Weights files a run or ``adapt`` writes: readable by whoever the umask lets read them."""

from __future__ import annotations

import os
import stat

from wsi_deblur.nets.fast import FastDeblurNet
from wsi_deblur.nets.files import read_config, save_network


def test_saved_weights_follow_the_umask_not_0600(tmp_path):
    """Workers of another user (a shared cluster) must read adapted weights: safetensors alone writes 0600."""
    path = tmp_path / "deblur_fast_defocus.safetensors"
    old = os.umask(0o022)
    try:
        save_network(FastDeblurNet((8, 16)), path, "fast", blur="defocus")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert read_config(path)["blur"] == "defocus"
