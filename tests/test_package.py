"""Importing the package is cheap: the heavy libraries load with the first name that needs them."""

import subprocess
import sys


def test_import_loads_no_torch_dask_or_zarr_until_a_name_needs_them():
    code = ("import sys, wsi_deblur, wsi_deblur.pipeline, wsi_deblur.restore, wsi_deblur.classify\n"
            "print(sorted(m for m in ('torch', 'dask', 'zarr', 'distributed') if m in sys.modules))\n"
            "wsi_deblur.process_slide\n"
            "print(sorted(m for m in ('torch', 'dask') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "['dask', 'torch']"


def test_an_unknown_name_is_an_attribute_error():
    import pytest

    import wsi_deblur

    with pytest.raises(AttributeError, match="no attribute 'proces_slide'"):
        wsi_deblur.proces_slide  # noqa: B018
