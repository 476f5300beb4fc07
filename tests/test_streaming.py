"""Streamed inference: the blocks equal the in-memory path, windowed GDAL reads/writes, the reduced flow."""
import numpy as np
import pytest
from osgeo import gdal

from helpers import write_geotiff

torch = pytest.importorskip("torch")

from model.presets import make_config  # noqa: E402
from model.training import train_pair  # noqa: E402
from model.inference import (ArrayPair, bounded_initial_flow, generate_frames, advection_fields,  # noqa: E402
                             iter_frame_blocks, iter_field_blocks)


def _pair(h=150, w=170):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)

    def img(dx, dy):
        v = np.zeros((h, w), np.float32)
        for cx, cy, s in ((40, 40, 9.0), (110, 90, 7.0), (80, 30, 5.0), (130, 130, 8.0)):
            v += np.exp(-((x - cx - dx) ** 2 + (y - cy - dy) ** 2) / (2 * s * s))
        return (40.0 * v + 3.0)[None]
    return img(0, 0), img(5.0, 3.0)


@pytest.fixture(scope="module")
def model():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x0, x1 = _pair()
    cfg = make_config("fast", "accurate", steps=3, iterations=4, patch_size=32, batch_size=2)
    yield train_pair(x0, x1, config=cfg, seed=1).model
    torch.set_num_threads(threads)


def test_blocks_cover_once_and_equal_in_memory(model):
    x0, x1 = _pair()
    x0[:, 10:20, 30:50] = np.nan
    ref = generate_frames(model, x0, x1, tile=48, overlap=12)
    out = np.full_like(ref, -999.0)
    seen = np.zeros(ref.shape[-2:], int)
    for r, q, block in iter_frame_blocks(model, ArrayPair(x0, x1), tile=48, overlap=12, flow_max_side=10 ** 6):
        out[:, :, r:r + block.shape[2], q:q + block.shape[3]] = block
        seen[r:r + block.shape[2], q:q + block.shape[3]] += 1
    assert (seen == 1).all()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    assert np.nanmax(np.abs(out - ref)) == 0.0
    fields = advection_fields(model, x0, x1, tile=48, overlap=12)
    got = np.zeros_like(fields)
    for r, q, block in iter_field_blocks(model, ArrayPair(x0, x1), tile=48, overlap=12, flow_max_side=10 ** 6):
        got[:, :, r:r + block.shape[2], q:q + block.shape[3]] = block
    assert np.abs(got - fields).max() == 0.0


def test_reduced_flow_stays_close(model):
    """Whole scenes compute the initial DIS flow on a reduced image: the frames move by little."""
    x0, x1 = _pair()
    ref = generate_frames(model, x0, x1, tile=64, overlap=16)
    src = ArrayPair(x0, x1)
    flow = bounded_initial_flow(src, model.cfg.flow_smooth, max_side=85)   # half resolution
    assert flow.flow.shape[1:] == (75, 85)
    full = bounded_initial_flow(src, model.cfg.flow_smooth, max_side=10 ** 6)
    inner = (slice(None), slice(16, -16), slice(16, -16))
    assert np.abs(flow.window(0, 150, 0, 170) - full.flow)[inner].mean() < 0.5   # px, of a 5.8 px motion
    out = np.empty_like(ref)
    for r, q, block in iter_frame_blocks(model, src, tile=64, overlap=16, flow_max_side=85):
        out[:, :, r:r + block.shape[2], q:q + block.shape[3]] = block
    span = np.nanmax(ref) - np.nanmin(ref)
    assert np.nanmean(np.abs(out - ref)) < 0.02 * span
    assert np.array_equal(out[0], ref[0]) and np.array_equal(out[-1], ref[-1])


def test_windowed_read_and_write_match_read_pair_and_write_frames(model, tmp_path):
    from inbetween.processing_provider.raster_io import (FrameWriter, PairWindows, open_pair_windows,
                                                         read_pair, write_frames)
    x0, x1 = _pair()
    a = np.round(x0).astype(np.uint8)
    a[0, 5:9, 7:30] = 255
    first = write_geotiff(tmp_path / "a.tif", a, dtype=gdal.GDT_Byte, nodata=255)
    second = write_geotiff(tmp_path / "b.tif", np.round(x1).astype(np.uint8), dtype=gdal.GDT_Byte, nodata=255)
    src = open_pair_windows(first, second)
    assert isinstance(src, PairWindows)
    pair = read_pair(first, second)
    w0, w1, valid = src.window(0, src.height, 0, src.width)
    np.testing.assert_array_equal(w0, pair.x0)
    np.testing.assert_array_equal(valid, pair.valid)
    ref = generate_frames(model, pair.x0, pair.x1, pair.valid, tile=64, overlap=16)
    times = None
    expected = write_frames(ref, pair.grid, times, tmp_path / "ref")
    with FrameWriter(tmp_path / "stream", src.grid, times, ref.shape[0]) as writer:
        for r, q, block in iter_frame_blocks(model, src, tile=64, overlap=16):
            writer.write(r, q, block)
        paths = writer.commit()
    assert [p.rsplit("/", 1)[-1] for p in paths] == [p.rsplit("/", 1)[-1] for p in expected]
    for p, e in zip(paths, expected):
        ds, de = gdal.Open(p), gdal.Open(e)
        np.testing.assert_array_equal(ds.ReadAsArray(), de.ReadAsArray())
        assert ds.GetGeoTransform() == de.GetGeoTransform()
        assert ds.GetRasterBand(1).GetNoDataValue() == de.GetRasterBand(1).GetNoDataValue() == 255
        assert ds.GetRasterBand(1).GetStatistics(0, 0)[:2] == de.GetRasterBand(1).GetStatistics(0, 0)[:2]
    assert sorted(p.name for p in (tmp_path / "stream").iterdir()) == [p.rsplit("/", 1)[-1] for p in paths]


def test_writer_leaves_nothing_on_error(tmp_path):
    from inbetween.processing_provider.raster_io import FrameWriter, Grid

    grid = Grid(width=32, height=32, band_names=["b"], nodata=[None])
    with pytest.raises(RuntimeError):
        with FrameWriter(tmp_path / "out", grid, None, 3) as writer:
            writer.write(0, 0, np.zeros((3, 1, 16, 16), np.float32))
            raise RuntimeError("boom")
    assert not (tmp_path / "out").exists(), [str(p) for p in (tmp_path / "out").rglob("*")]


def test_decimated_read_equals_in_memory_reduction(tmp_path):
    from inbetween.processing_provider.raster_io import open_pair_windows
    x0, x1 = _pair()
    first = write_geotiff(tmp_path / "a.tif", x0)
    second = write_geotiff(tmp_path / "b.tif", x1)
    src = open_pair_windows(first, second)
    got = src.decimated(40, 50, strip=16)
    ref = ArrayPair(x0, x1).decimated(40, 50)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)


def test_zero_decoder_shortcut_equals_full_frames(model):
    """accurate mode leaves ψ at zero: the runner skips encoder and decoder, with identical frames."""
    from model.inference import decoder_is_zero, blended_frames, auto_tile

    assert decoder_is_zero(model)
    x0, x1 = _pair(60, 70)
    t0 = torch.from_numpy(x0 / 40.0)[None].float()
    t1 = torch.from_numpy(x1 / 40.0)[None].float()
    flow = torch.ones(1, 2, 60, 70) * torch.tensor([5.0, 3.0]).view(1, 2, 1, 1)
    with torch.no_grad():
        ref = torch.cat(model.frames(t0, t1, flow)[0], 0)
        got = blended_frames(model, t0, t1, flow)
    assert float((ref - got).abs().max()) == 0.0
    assert auto_tile(40) == 512 and auto_tile(230) == 1024


def test_a_cancel_is_heard_within_a_tile():
    """Hundreds of steps on one tile took tens of seconds with no cancel check (a user's SIGINT waited for the
    whole run): the check now runs at every step of the rollouts and the blend."""
    from model.inference import iter_blocks, TorchTileRunner
    from model.training import TrainingCanceled

    x0, x1 = _pair(64, 64)
    result = train_pair(x0, x1, config=make_config("fast", "accurate", steps=60, iterations=0), seed=0)
    asked = []

    def is_canceled():          # the user cancels right after the run has started
        asked.append(1)
        return len(asked) > 2
    with pytest.raises(TrainingCanceled):
        for _ in iter_blocks(TorchTileRunner(result.model, "cpu"), ArrayPair(x0, x1), "frames", tile=512,
                             is_canceled=is_canceled):
            pass
    assert len(asked) == 3      # heard at the first check after it, inside the one tile's 60 steps
    # not cancelled: the same tile runs through, its 61 frames
    blocks = list(iter_blocks(TorchTileRunner(result.model, "cpu"), ArrayPair(x0, x1), "frames", tile=512,
                              is_canceled=lambda: False))
    assert len(blocks) == 1 and blocks[0][2].shape[0] == 61
