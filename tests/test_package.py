"""Importing the package is cheap: the heavy libraries load with the first name that needs them."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import wsi_deblur


def test_import_loads_no_torch_dask_or_zarr_until_a_name_needs_them():
    code = ("import sys, wsi_deblur, wsi_deblur.pipeline, wsi_deblur.restore, wsi_deblur.classify, wsi_deblur.nets\n"
            "wsi_deblur.nets.list_networks()\n"
            "print(sorted(m for m in ('torch', 'dask', 'zarr', 'distributed') if m in sys.modules))\n"
            "wsi_deblur.process_slide\n"
            "print(sorted(m for m in ('torch', 'dask', 'distributed') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "['dask', 'torch']"


def test_an_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'proces_slide'"):
        wsi_deblur.proces_slide  # noqa: B018


def test_the_stub_names_every_public_name_and_each_is_where_it_says():
    stub = Path(wsi_deblur.__file__).with_suffix(".pyi").read_text()
    declared = set(re.findall(r"^from (\S+) import (\w+) as \2$", stub, re.M))
    assert {name for _, name in declared} == set(wsi_deblur.__all__) - {"__version__"}
    for module, name in declared:
        assert getattr(importlib.import_module(module), name) is getattr(wsi_deblur, name)


def test_no_import_loops_and_networks_below_their_users():
    """The network package imports no restorer, classifier or pipeline (one home for networks, arrows down)."""
    package = Path(wsi_deblur.__file__).parent
    for path in (package / "nets").glob("*.py"):
        imported = re.findall(r"^\s*from (wsi_deblur\.\w+)", path.read_text(), re.M)
        assert not {m for m in imported} & {"wsi_deblur.restore", "wsi_deblur.classify", "wsi_deblur.pipeline",
                                            "wsi_deblur.adaptation", "wsi_deblur.cli"}, path
