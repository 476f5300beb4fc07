"""inbetween:exportfield keeps only samples of the streamed field: its NetCDF and PNG equal what the
whole-field writers make of the whole field, and agree with its GeoPackage vectors.

A real model (trained briefly) on a real GeoTIFF pair big enough for 2 × 2 tiles (512 px tiles), with
nodata in FIRST and in SECOND; the whole field for the reference is assembled from the same blocks."""
import numpy as np
import pytest
from osgeo import gdal, ogr

from helpers import collecting_feedback, write_geotiff

torch = pytest.importorskip("torch")

H, W, STEPS, SPACING = 540, 530, 3, 8
T0, T1 = "2016-09-28T14:45:00+00:00", "2016-09-28T15:45:00+00:00"


def _image(dx, dy):
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rng = np.random.default_rng(3)
    v = np.zeros((H, W), np.float32)
    for cx, cy, s in zip(rng.uniform(0, W, 40), rng.uniform(0, H, 40), rng.uniform(5, 20, 40)):
        v += np.exp(-((x - cx - dx) ** 2 + (y - cy - dy) ** 2) / (2 * s * s))
    return 40 * v + 3


@pytest.fixture(scope="module")
def pair_model(provider, tmp_path_factory):
    from model.presets import make_config
    from model.training import train_pair
    from model.modelfile import save_model
    from inbetween.processing_provider.raster_io import read_pair

    folder = tmp_path_factory.mktemp("exportfield")
    a, b = _image(0, 0), _image(5, -3)
    a[:80, :120] = -9999   # FIRST nodata: no vectors, no streamlines
    b[470:, 400:] = -9999  # SECOND nodata: no vectors
    first = write_geotiff(folder / "first.tif", a, when="2016:09:28 14:45:00", nodata=-9999)
    second = write_geotiff(folder / "second.tif", b, when="2016:09:28 15:45:00", nodata=-9999)
    pair = read_pair(first, second)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = make_config("fast", "accurate", steps=STEPS, iterations=4, patch_size=32, batch_size=2)
    result = train_pair(pair.x0, pair.x1, pair.valid, config=cfg, seed=0)
    torch.set_num_threads(threads)
    model = str(folder / "m.inbetween")
    save_model(model, result, {"times": [T0, T1], "width": W, "height": H})
    return dict(first=first, second=second, model=model)


def _export(pm, out, **extra):
    from test_algorithms import run

    feedback = collecting_feedback()
    res = run("exportfield", dict(MODEL=pm["model"], FIRST=pm["first"], SECOND=pm["second"], SPACING=SPACING,
                                  DEVICE="cpu", OUTPUT=str(out / "f.gpkg"), **extra), feedback)
    return res, feedback.infos


def _whole_field(pm):
    """The whole (N, 2, H, W) field from the same runner and blocks as exportfield, FIRST, grid, times."""
    from model.inference import iter_blocks
    from inbetween.processing_provider.inputs import load_runner
    from inbetween.processing_provider.raster_io import open_pair_windows
    from inbetween.processing_provider.times import frame_times
    from datetime import datetime

    runner, _ = load_runner(pm["model"], "cpu")
    source = open_pair_windows(pm["first"], pm["second"])
    fields = np.full((STEPS, 2, H, W), np.nan, np.float32)
    blocks = 0
    for r, g, block in iter_blocks(runner, source, "fields"):
        fields[:, :, r:r + block.shape[2], g:g + block.shape[3]] = block
        blocks += 1
    assert blocks == 4  # the samples really are gathered over several tiles
    assert np.isfinite(fields).all()
    times = frame_times(datetime.fromisoformat(T0), datetime.fromisoformat(T1), STEPS)
    return fields, source.window(0, H, 0, W)[0], source.grid, times


def _gpkg_vectors(path):
    ds = ogr.Open(str(path))
    rows = [(f["step"], f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY(), f["u"], f["v"])
            for f in ds.GetLayer(0)]
    ds = None
    return rows


def _nc(path):
    root = gdal.OpenEx(str(path), gdal.OF_MULTIDIM_RASTER).GetRootGroup()
    return {k: root.OpenMDArray(k).ReadAsArray() for k in ("x", "y", "time", "u", "v")}


def _shared(vectors, nc):
    """(GeoPackage u, v; NetCDF u, v) at the GeoPackage points that are NetCDF cell centres."""
    xi = {x: i for i, x in enumerate(nc["x"])}
    yi = {y: i for i, y in enumerate(nc["y"])}
    got = [(u, v, nc["u"][s, yi[y], xi[x]], nc["v"][s, yi[y], xi[x]])
           for s, x, y, u, v in vectors if x in xi and y in yi]
    return np.array(got, np.float64).reshape(-1, 4)


def test_netcdf_and_plot_equal_the_whole_field_outputs(pair_model, tmp_path):
    from test_field_io import assert_same_nc
    from inbetween.processing_provider import field_io

    res, infos = _export(pair_model, tmp_path, OUTPUT_NETCDF=str(tmp_path / "f.nc"),
                         OUTPUT_PLOT=str(tmp_path / "f.png"))
    assert not any("keeps every" in i for i in infos)  # 286 200 cells: not decimated
    fields, first, grid, times = _whole_field(pair_model)
    assert_same_nc(res["OUTPUT_NETCDF"], field_io.write_field_netcdf(fields, grid, times, tmp_path / "ref.nc"))
    ref = field_io.plot_field_png(fields, first, grid, tmp_path / "ref.png", times=times)
    with open(res["OUTPUT_PLOT"], "rb") as a, open(ref, "rb") as b:
        assert a.read() == b.read()
    assert gdal.Open(res["OUTPUT_PLOT"]).RasterXSize > 300

    nc = _nc(res["OUTPUT_NETCDF"])
    assert nc["u"].shape == (STEPS, H, W)
    assert nc["x"][0] == 500000 + 0.5 * 250 and nc["y"][-1] == 7000000 - 0.5 * 250
    vectors = _gpkg_vectors(res["OUTPUT"])
    ok = np.ones((H, W), bool)
    ok[:80, :120] = ok[470:, 400:] = False
    n_valid = STEPS * ok[np.ix_(field_io.sample_indices(H, SPACING), field_io.sample_indices(W, SPACING))].sum()
    assert len(vectors) == n_valid  # one per sample point and step, none where FIRST or SECOND is nodata
    both = _shared(vectors, nc)
    assert len(both) == len(vectors)  # every GeoPackage point is a NetCDF cell centre
    np.testing.assert_allclose(both[:, 2:], both[:, :2], rtol=0, atol=1e-4)
    assert np.abs(both[:, :2]).max() > 0.1  # m/s: a field that moves, not zeros on both sides


def test_netcdf_decimated_to_max_cells(pair_model, tmp_path, monkeypatch):
    from inbetween.processing_provider import alg_exportfield, field_io

    monkeypatch.setattr(alg_exportfield, "NETCDF_MAX_CELLS", 529)
    k = field_io.netcdf_spacing(H, W, 1, 529)
    assert k == 24  # an odd multiple of SPACING: the NetCDF cells are GeoPackage points
    res, infos = _export(pair_model, tmp_path, OUTPUT_NETCDF=str(tmp_path / "f.nc"))
    assert "The NetCDF field keeps every 24th pixel to stay within 529 cells per step." in infos
    assert "OUTPUT_PLOT" not in res
    nc = _nc(res["OUTPUT_NETCDF"])
    rows, cols = field_io.sample_indices(H, k), field_io.sample_indices(W, k)
    assert nc["u"].shape == (STEPS, len(rows), len(cols)) and len(rows) * len(cols) <= 529
    np.testing.assert_allclose(nc["x"], 500000 + (cols + 0.5) * 250)
    np.testing.assert_allclose(nc["y"], 7000000 - (rows[::-1] + 0.5) * 250)
    both = _shared(_gpkg_vectors(res["OUTPUT"]), nc)
    assert len(both) > 0.9 * STEPS * len(rows) * len(cols)
    np.testing.assert_allclose(both[:, 2:], both[:, :2], rtol=0, atol=1e-4)


def test_rotated_grid_with_netcdf_stops_before_any_work(pair_model, tmp_path):
    """A NetCDF needs x/y axes: on a rotated grid exportfield says so at once and writes nothing."""
    from qgis.core import QgsProcessingException

    a, b = _image(0, 0), _image(5, -3)
    rotated = (500000.0, 0.0, 250.0, 7000000.0, 250.0, 0.0)   # columns go north, rows go east
    first = write_geotiff(tmp_path / "r1.tif", a, geotransform=rotated, when="2016:09:28 14:45:00")
    second = write_geotiff(tmp_path / "r2.tif", b, geotransform=rotated, when="2016:09:28 15:45:00")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match="rotated.*north-up"):
        _export(dict(pair_model, first=first, second=second), out, OUTPUT_NETCDF=str(out / "f.nc"))
    assert sorted(p.name for p in out.iterdir()) == []
