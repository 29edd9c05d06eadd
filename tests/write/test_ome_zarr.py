import dask.array as da
import numpy as np
import pytest
import zarr
from ome_zarr_models import open_ome_zarr

from wsi_deblur.write.checkpoints import Checkpoints
from wsi_deblur.write.ome_zarr import ZarrLayout, create_ome_zarr, downsample_level, pyramid_shapes, store_level0, write_label_image


def write(path, image, version="0.4", compression="blosc", chunks=1024, downsample_chunk=512):
    levels = create_ome_zarr(path, shape=image.shape[:2], mpp=0.25, name="x",
                             layout=ZarrLayout(version, compression, chunk=256), min_size=256)
    store_level0(da.from_array(image, chunks=(chunks, chunks, 3)), levels[0])
    for a, b in zip(levels[:-1], levels[1:]):
        downsample_level(a, b, chunk=downsample_chunk)
    write_label_image(path, np.arange(12, dtype=np.uint8).reshape(3, 4) % 5, mpp=0.25, tile_size=256,
                      n_levels=len(levels), version=version)
    return levels


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (1111, 1333, 3), dtype=np.uint8)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_written_pyramid_validates_and_reads_back(tmp_path, image, version):
    path = tmp_path / "x.ome.zarr"
    levels = write(path, image, version)
    assert [lv.shape for lv in levels] == [(3, 1111, 1333), (3, 556, 667), (3, 278, 334), (3, 139, 167)]
    group = zarr.open_group(str(path), mode="r")
    model = open_ome_zarr(group)
    assert type(model).__name__ == "Image"
    assert type(open_ome_zarr(zarr.open_group(str(path / "labels" / "blur"), mode="r"))).__name__ == "ImageLabel"
    np.testing.assert_array_equal(group["0"][:].transpose(1, 2, 0), image)
    attrs = dict(group.attrs)
    meta = attrs["ome"] if version == "0.5" else attrs
    ms = meta["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 0.5]
    assert [c["color"] for c in meta["omero"]["channels"]] == ["FF0000", "00FF00", "0000FF"]
    assert meta["omero"]["rdefs"]["model"] == "color"


@pytest.mark.parametrize("downsample_chunk", [512, 256])
def test_each_level_is_the_rounded_2x2_mean_of_the_one_above(tmp_path, image, downsample_chunk):
    # 256: regions read as big as a stored chunk would write half-chunks, two
    # tasks into one stored chunk; the writer must widen them.
    levels = write(tmp_path / "x.ome.zarr", image, downsample_chunk=downsample_chunk)
    for above, below in zip(levels[:-1], levels[1:]):
        a = above[:].astype(np.float64)
        a = np.pad(a, ((0, 0), (0, a.shape[1] % 2), (0, a.shape[2] % 2)), mode="edge")
        ref = np.floor((a[:, ::2, ::2] + a[:, 1::2, ::2] + a[:, ::2, 1::2] + a[:, 1::2, 1::2] + 2) / 4)
        np.testing.assert_array_equal(below[:], ref.astype(np.uint8))


def test_v04_store_is_zarr_v2_with_a_qupath_readable_codec(tmp_path, image):
    write(tmp_path / "b.ome.zarr", image, compression="blosc")
    write(tmp_path / "z.ome.zarr", image, compression="zlib")
    import json

    assert json.loads((tmp_path / "b.ome.zarr/0/.zarray").read_text())["compressor"]["id"] == "blosc"
    assert json.loads((tmp_path / "z.ome.zarr/0/.zarray").read_text())["compressor"]["id"] == "zlib"


def test_ome_zarr_reader_reads_it(tmp_path, image):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    write(tmp_path / "x.ome.zarr", image)
    nodes = list(Reader(parse_url(str(tmp_path / "x.ome.zarr")))())
    assert nodes[0].data[0].shape == (3, 1111, 1333)


def test_misaligned_chunks_are_refused(tmp_path, image):
    levels = create_ome_zarr(tmp_path / "m.ome.zarr", shape=image.shape[:2], mpp=0.25, name="m", layout=ZarrLayout(chunk=256))
    with pytest.raises(ValueError, match="multiples"):
        store_level0(da.from_array(image, chunks=(300, 300, 3)), levels[0])


def test_pyramid_stops_at_min_size():
    assert pyramid_shapes((2967, 2220)) == [(2967, 2220), (1484, 1110), (742, 555)]
    assert pyramid_shapes((800, 600)) == [(800, 600)]


def test_level0_skips_regions_marked_done_and_marks_the_rest(tmp_path, image):
    levels = create_ome_zarr(tmp_path / "r.ome.zarr", shape=image.shape[:2], mpp=0.25, name="r", layout=ZarrLayout(chunk=256))
    checkpoints = Checkpoints(tmp_path / "staging")
    checkpoints.mark("level0-0-1")  # as if an interrupted run had finished this region
    written = store_level0(da.from_array(image, chunks=(512, 512, 3)), levels[0], checkpoints=checkpoints)
    assert written == 3 * 3 - 1
    expected = np.moveaxis(image, -1, 0).copy()
    expected[:, :512, 512:1024] = 0  # skipped: left as it was (the fill value here)
    np.testing.assert_array_equal(levels[0][:], expected)
    assert checkpoints.names("level0-") == {f"level0-{i}-{j}" for i in range(3) for j in range(3)}
    assert store_level0(da.from_array(image, chunks=(512, 512, 3)), levels[0], checkpoints=checkpoints) == 0


def test_zoomed_out_blur_labels_are_the_mode_of_their_block_and_sit_over_it(tmp_path, image):
    """Each label level-k pixel holds the most frequent label of the 2^k x 2^k tiles it covers (ties: the
    higher value), and its centre, by the declared transforms, is the centre of those tiles.
    """
    path = tmp_path / "x.ome.zarr"
    write(path, image)
    group = zarr.open_group(str(path / "labels" / "blur"), mode="r")
    ms = dict(group.attrs)["multiscales"][0]
    assert ms["type"] == "mode"
    tiles = group["0"][0]
    np.testing.assert_array_equal(group["1"][0], [[0, 2], [4, 1]])  # of [[0 1 2 3] [4 0 1 2] [3 4 0 1]]: ties high
    assert tiles.shape == (3, 4)
    for k in (1, 2):
        scale, shift = (t[key] for t, key in zip(ms["datasets"][k]["coordinateTransformations"],
                                                 ("scale", "translation")))
        first_block_centre = (256 * 2 ** k - 1) / 2 * 0.25  # level-0 pixel centres of the tiles it covers
        assert scale[1:] == [256 * 2 ** k * 0.25] * 2 and shift[1:] == [first_block_centre] * 2
