import pickle

import numpy as np
import pytest
import tifffile
from PIL import Image

from wsi_deblur.io import SlideError, open_slide, slide_stem


def test_fast_path_equals_openslide_on_real_svs(real_svs):
    fast = open_slide(real_svs)
    ref = open_slide(real_svs, backend="openslide")
    assert fast.backend_name == "tifffile" and ref.backend_name == "openslide"
    assert fast.shape == ref.shape == (2967, 2220)
    assert fast.mpp == pytest.approx(0.499)
    h, w = fast.shape
    np.testing.assert_array_equal(fast.read_region(0, 0, h, w), ref.read_region(0, 0, h, w))
    # regions that straddle the edge are padded the same way (white)
    for y, x in [(-37, 2100), (2900, -11), (1234, 567)]:
        np.testing.assert_array_equal(fast.read_region(y, x, 150, 170), ref.read_region(y, x, 150, 170))


def test_synthetic_slide_reads_back_exactly(small_slide, small_slide_model):
    slide = open_slide(small_slide)
    assert slide.shape == (1100, 1300)
    assert slide.mpp == pytest.approx(0.5)
    np.testing.assert_array_equal(slide.read_region(100, 700, 333, 444), small_slide_model.render(100, 700, 433, 1144))


def test_to_dask_matches_read_region_on_odd_chunks(small_slide):
    slide = open_slide(small_slide)
    arr = slide.to_dask(chunks=301)
    assert arr.chunks[0][:3] == (301, 301, 301)
    np.testing.assert_array_equal(arr.compute(), slide.read_region(0, 0, *slide.shape))


def test_read_window_mirrors_outside_the_slide(small_slide):
    slide = open_slide(small_slide)
    win = slide.read_window(-5, -7, 20, 30)
    assert win.shape == (25, 37, 3)
    inner = slide.read_region(0, 0, 20, 30)
    np.testing.assert_array_equal(win[5:, 7:], inner)
    np.testing.assert_array_equal(win[4, 7:], inner[0])  # symmetric mirror repeats the edge row


def test_slide_pickles_as_a_recipe(small_slide):
    slide = open_slide(small_slide)
    clone = pickle.loads(pickle.dumps(slide))
    np.testing.assert_array_equal(clone.read_region(10, 10, 50, 60), slide.read_region(10, 10, 50, 60))
    assert len(pickle.dumps(slide)) < 1000  # no pixels or handles travel


def test_thumbnail_is_block_mean(small_slide):
    slide = open_slide(small_slide)
    thumb, ds = slide.thumbnail(max_size=200)
    assert ds == 7 and thumb.shape == (158, 186, 3)
    full = slide.read_region(0, 0, 7 * 158, 7 * 186).astype(np.float64)
    ref = np.rint(full.reshape(158, 7, 186, 7, 3).mean(axis=(1, 3)))
    np.testing.assert_array_equal(thumb[:-1, :-1], ref[:-1, :-1].astype(np.uint8))


def test_pyramid_levels_are_read(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    path = tmp_path / "pyr.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(data, subifds=1, tile=(256, 256), photometric="rgb", metadata={"axes": "YXS", "PhysicalSizeX": 0.25})
        tif.write(data[::2, ::2], subfiletype=1, tile=(256, 256), photometric="rgb")
    slide = open_slide(path)
    assert slide.level_shapes == [(600, 800), (300, 400)]
    assert slide.mpp == pytest.approx(0.25)
    np.testing.assert_array_equal(slide.read_region(0, 0, 300, 400, level=1), data[::2, ::2])


def test_rgba_png_is_composited_on_white(tmp_path):
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :25, 3] = 255  # left opaque red, right transparent
    Image.fromarray(rgba).save(tmp_path / "a.png")
    px = open_slide(tmp_path / "a.png", mpp=0.5).read_region(0, 0, 40, 50)
    assert (px[:, :25] == [200, 0, 0]).all() and (px[:, 25:] == 255).all()


def test_grayscale_is_replicated(tmp_path):
    gray = np.arange(2000, dtype=np.uint8).reshape(40, 50)
    Image.fromarray(gray).save(tmp_path / "g.png")
    px = open_slide(tmp_path / "g.png").read_region(0, 0, 40, 50)
    assert px.shape == (40, 50, 3) and (px == gray[:, :, None]).all()


@pytest.mark.parametrize("writer", ["png", "tiff"])
def test_16bit_is_refused_with_a_clear_message(tmp_path, writer):
    data = np.full((32, 32), 4000, np.uint16)
    path = tmp_path / f"deep.{'png' if writer == 'png' else 'tif'}"
    if writer == "png":
        Image.fromarray(data).save(path)
    else:
        tifffile.imwrite(path, data)
    with pytest.raises(SlideError, match=r"deep\.(png|tif): .*(16|uint16).*8-bit"):
        open_slide(path)


@pytest.mark.parametrize("content,reason", [
    (None, "no such file"), (b"", "file is empty"), (b"hello, not a slide\n" * 10, "can read"),
])
def test_bad_files_name_the_file_and_the_reason(tmp_path, content, reason):
    path = tmp_path / "bad.svs"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SlideError) as err:
        open_slide(path)
    assert str(err.value).startswith(str(path)) and reason in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("mode,interlace", [("RGB", False), ("RGB", True), ("RGBA", False)])
def test_png_pixels_equal_pillows_decode(tmp_path, mode, interlace):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (37, 53, len(mode)), dtype=np.uint8)
    pixels[..., 3:] = np.maximum(pixels[..., 3:], 200)  # alpha of the RGBA case
    path = tmp_path / "field.png"
    Image.fromarray(pixels, mode).save(path, interlace=interlace, dpi=(50800, 50800))
    image = Image.open(path)
    expected = np.asarray(image.convert("RGB")) if mode == "RGB" else None
    slide = open_slide(path)
    read = slide.read_region(0, 0, 37, 53)
    assert slide.mpp == pytest.approx(0.5)
    if expected is not None:
        assert (read == expected).all()
    else:  # composited on white, as every RGBA image
        alpha = pixels[..., 3:] / 255.0
        assert np.abs(read - (pixels[..., :3] * alpha + 255 * (1 - alpha))).max() <= 1


def test_truncated_png_is_refused_at_open(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SlideError) as err:
        open_slide(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_truncated_tiff_is_refused_at_open(tmp_path, small_slide):
    data = small_slide.read_bytes()
    path = tmp_path / "cut.ome.tif"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(SlideError, match="truncated|cannot read|not a readable"):
        open_slide(path)


def test_stem_drops_ome_suffix():
    assert slide_stem("/a/b/x.ome.tif") == "x"
    assert slide_stem("CMU-1.svs") == "CMU-1"
    assert slide_stem("dir/slide.v2.ome.tiff") == "slide.v2"


def _png_header_only(path, width, height):
    """A PNG that declares ``width`` x ``height`` RGB pixels and holds almost none (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))


def test_an_image_too_large_to_decode_whole_is_refused_before_decoding(tmp_path):
    import resource

    path = tmp_path / "bomb.png"
    _png_header_only(path, 30000, 30000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SlideError, match=r"bomb.png: a plain image of 30000 x 30000 px \(900 Mpx\) is more than"):
        open_slide(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: nothing was decoded


def test_a_huge_level_without_a_pyramid_is_refused_at_open(tmp_path):
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, shape=(70000, 70000, 3), dtype=np.uint8, photometric="rgb")  # sparse: no data written
    with pytest.raises(SlideError, match=r"flat.tif: level 0 is 70000 x 70000 px .* with no reduced levels"):
        open_slide(path)


def test_a_48_bit_png_is_refused_not_reduced_to_8_bits(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(path)  # a 16-bit grey PNG: the same refusal
    with pytest.raises(SlideError, match="deep.png"):
        open_slide(path)
    import imagecodecs

    path.write_bytes(imagecodecs.png_encode(np.full((8, 8, 3), 40000, np.uint16)))
    with pytest.raises(SlideError, match="deep.png: .*(16|bit)"):
        open_slide(path)


def test_a_jpeg_too_small_for_the_size_it_claims_is_refused_not_judged_on_grey_filler(tmp_path):
    """A 691-byte JPEG whose header says 16000 x 16000 px decodes (libjpeg fills it with grey): refused."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = (16000).to_bytes(2, "big") * 2  # height, width
    path = tmp_path / "claims.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(SlideError, match=r"claims.jpg: a JPEG of \d+ bytes cannot hold the 16000 x 16000 px"):
        open_slide(path)
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(tmp_path / "flat.jpg")  # uniform but whole: read
    assert open_slide(tmp_path / "flat.jpg").shape == (64, 64)


@pytest.mark.shared_data
def test_a_truncated_svs_says_it_is_truncated(shared_data, tmp_path):
    """A copy cut short (an interrupted transfer) gets a reason a user can act on, not tifffile's internals."""
    svs = shared_data / "wsi" / "CMU-1-Small-Region.svs"
    if not svs.exists():
        pytest.skip("CMU-1-Small-Region.svs is not in ../shared/data/wsi")
    cut = tmp_path / "cut.svs"
    cut.write_bytes(svs.read_bytes()[: svs.stat().st_size // 10])
    with pytest.raises(SlideError, match=r"cut.svs: truncated: its first image directory is at byte \d+ but the "
                                         r"file ends at byte \d+"):
        open_slide(cut)
