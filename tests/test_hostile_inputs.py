"""The hostile probe's damaged inputs in one batch, as a facility meets them: each is refused in one line naming
the file and the reason, leaves no output that looks complete, and the batch goes on to the good slide.

Each refusal has its own test beside its code (``tests/io``, ``tests/pipeline``); this file holds them together
against the command a user runs, so a change that lets one of them through, or turns it into a traceback or a
stopped batch, fails here.
"""

import io
import json
import shutil
import struct
import subprocess
import sys
import zlib

import dask.array as da
import numpy as np
import pytest
import tifffile
from PIL import Image

from wsi_deblur.synthetic import SyntheticSlide
from wsi_deblur.write.ome_zarr import ZarrLayout, create_ome_zarr, store_level0

SMALL = ["--tile-size", "256", "--halo", "16", "--chunk", "512"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "wsi_deblur.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def _zarr_with_half_its_chunks(path, field):
    level = create_ome_zarr(path, shape=field.shape[:2], mpp=0.5, name="x", layout=ZarrLayout("0.4", chunk=256),
                            min_size=1024)[0]
    store_level0(da.from_array(field, chunks=(512, 512, 3)), level)
    chunks = sorted(p for p in (path / "0").rglob("*") if p.is_file() and not p.name.startswith("."))
    for p in chunks[: len(chunks) // 2]:  # an interrupted copy
        p.unlink()


def _jpeg_claiming(path, side):
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = side.to_bytes(2, "big") * 2
    path.write_bytes(bytes(data))


def _zeroed_tiles(path, field):
    """A JPEG-tiled TIFF whose first half of tiles were overwritten with zeros (a disk or copy fault)."""
    tifffile.imwrite(path, field, photometric="rgb", tile=(256, 256), compression="jpeg")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tiles = list(zip(page.dataoffsets, page.databytecounts))
    with open(path, "r+b") as f:
        for offset, count in tiles[: len(tiles) // 2]:
            f.seek(offset)
            f.write(bytes(count))


def _png_bomb(path, side):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder of damaged inputs, each with the words its refusal must hold."""
    folder = tmp_path_factory.mktemp("hostile")
    field = SyntheticSlide((768, 1024), tissue=False, seed=4).render(0, 0, 768, 1024)
    _zarr_with_half_its_chunks(folder / "copied.ome.zarr", field)
    _jpeg_claiming(folder / "claims.jpg", 16000)
    _png_bomb(folder / "bomb.png", 30000)
    _zeroed_tiles(folder / "zeroed.tif", field)
    with tifffile.TiffWriter(folder / "unwritten.tif") as tif:  # a converter that died: tile table, no tiles
        tif.write(shape=(1024, 1024, 3), dtype=np.uint8, tile=(256, 256), photometric="rgb")
    Image.fromarray(((255 - field.astype(np.int32)) // 4).astype(np.uint8)).save(folder / "dapi.png")
    Image.fromarray(field).save(folder / "cut.png")
    (folder / "cut.png").write_bytes((folder / "cut.png").read_bytes()[:20000])
    (folder / "text.svs").write_text("not a slide\n")
    reasons = {"copied.ome.zarr": "a truncated", "claims.jpg": "cannot hold the 16000 x 16000 px",
               "bomb.png": "30000 x 30000 px", "unwritten.tif": "no image", "dapi.png": "fluorescence",
               "cut.png": "", "text.svs": "", "zeroed.tif": "cannot read pixels"}
    return folder, reasons


def test_a_batch_of_damaged_inputs_refuses_each_in_one_line_and_finishes_the_good_slide(hostile, small_slide,
                                                                                        tmp_path):
    folder, reasons = hostile
    good = folder.parent / "good"
    good.mkdir(exist_ok=True)
    shutil.copy(small_slide, good / "small.ome.tif")
    out = tmp_path / "out"
    r = _cli("qc", *sorted(folder.iterdir()), good / "small.ome.tif", "-o", out, "--mpp", "0.5", *SMALL)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    for name, reason in reasons.items():
        said = [e for e in errors if f"{name}:" in e]
        assert len(said) == 1 and reason in said[0], (name, errors)
    slides = json.loads((out / "manifest.json").read_text())["slides"]
    assert slides["small"]["status"] == "done" and (out / "small.qc.json").is_file()
    left = {p.name for p in out.iterdir()}
    for name in reasons:  # nothing that looks like a result of a refused input
        stem = name.split(".")[0]
        assert not any(n.startswith(stem + ".") for n in left), (name, sorted(left))
        assert slides[stem]["status"] == "failed"


@pytest.mark.parametrize("command, name", [(["restore"], n) for n in ("copied.ome.zarr", "claims.jpg", "unwritten.tif",
                                                                     "dapi.png", "zeroed.tif")]
                         + [(["classify"], "zeroed.tif")])
def test_restore_and_classify_refuse_each_in_one_line_and_write_nothing(hostile, tmp_path, command, name):
    folder, reasons = hostile
    out = ["-o", tmp_path / "out"] if command[0] == "restore" else []
    r = _cli(*command, folder / name, *out, "--mpp", "0.5")
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and reasons[name] in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
