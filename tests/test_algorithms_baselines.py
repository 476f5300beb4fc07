"""inbetween:interpolate and inbetween:evaluate end to end (real Processing, real GeoTIFFs)."""
import csv

import numpy as np
import pytest
from osgeo import gdal

from helpers import qgis_process, translation_geotiffs, write_geotiff

STEPS = 4


def run(alg, params):
    import processing

    return processing.run(f"inbetween:{alg}", params)


@pytest.fixture(scope="module")
def pair(provider, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    first, second, truth = translation_geotiffs(folder, size=64, dx=4.0, dy=2.0, steps=STEPS)
    # the truth frames as reference rasters with their times, like real held-out frames
    refs = []
    for j in range(STEPS + 1):
        minute = 45 + 15 * j
        when = f"2016:09:28 {14 + minute // 60:02d}:{minute % 60:02d}:00"
        refs.append(write_geotiff(folder / f"ref_{j}.tif", truth[j], gdal.Open(first).GetGeoTransform(), when=when))
    return dict(first=first, second=second, truth=truth, refs=refs, folder=folder)


@pytest.mark.parametrize("method", ["linear", "opticalflow", "ot", "imageadvection"])
def test_interpolate_writes_frames_like_generateframes(pair, tmp_path, method):
    out = tmp_path / method
    result = run("interpolate", dict(FIRST=pair["first"], SECOND=pair["second"], STEPS=STEPS, METHOD=method,
                                     OUTPUT_FOLDER=str(out)))
    assert len(result["OUTPUT_LAYERS"]) == STEPS + 1
    mid = gdal.Open(str(out / "frame_002.tif"))
    assert mid.GetMetadataItem("TIFFTAG_DATETIME") == "2016:09:28 15:15:00"
    assert mid.GetGeoTransform() == gdal.Open(pair["first"]).GetGeoTransform()
    if method == "linear":
        expected = 0.5 * (pair["truth"][0, 0] + pair["truth"][-1, 0])
        np.testing.assert_allclose(mid.ReadAsArray(), expected, atol=1e-4)


def test_evaluate_scores_methods_against_references(pair, tmp_path):
    for method in ("linear", "opticalflow"):
        run("interpolate", dict(FIRST=pair["first"], SECOND=pair["second"], STEPS=STEPS, METHOD=method,
                                OUTPUT_FOLDER=str(tmp_path / method)))
    table = tmp_path / "scores.csv"
    run("evaluate", dict(GENERATED=f"{tmp_path / 'linear'};{tmp_path / 'opticalflow'}", REFERENCE=pair["refs"],
                         MATCH="time", THRESHOLD=20.0, OUTPUT_TABLE=str(table), OUTPUT_PLOT=str(tmp_path / "e.png")))
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == 2 * (STEPS + 1)
    by = {(r["method"], int(r["frame"])): r for r in rows}
    for method in ("linear", "opticalflow"):
        assert float(by[(method, 0)]["mae"]) < 1e-4 and float(by[(method, STEPS)]["mae"]) < 1e-4
    # the hand-checkable number: linear's middle-frame MAE is the mean |blend − truth|
    truth = pair["truth"]
    blend = 0.5 * (truth[0, 0] + truth[-1, 0])
    assert float(by[("linear", 2)]["mae"]) == pytest.approx(np.abs(blend - truth[2, 0]).mean(), rel=1e-4)
    assert float(by[("opticalflow", 2)]["mae"]) < 0.5 * float(by[("linear", 2)]["mae"])
    assert 0 <= float(by[("opticalflow", 2)]["csi"]) <= 1
    assert (tmp_path / "e.png").is_file()
    # FSS columns: perfect at the endpoints, and growing with the neighbourhood for the blurred blend
    assert float(by[("linear", 0)]["fss_1"]) == pytest.approx(1.0)
    assert float(by[("linear", 2)]["fss_1"]) <= float(by[("linear", 2)]["fss_16"]) <= 1.0


def test_evaluate_fss_is_pysteps_own(pair, tmp_path):
    pytest.importorskip("pysteps")
    from pysteps.verification import fss

    run("interpolate", dict(FIRST=pair["first"], SECOND=pair["second"], STEPS=STEPS, METHOD="linear",
                            OUTPUT_FOLDER=str(tmp_path / "lin")))
    table = tmp_path / "s.csv"
    run("evaluate", dict(GENERATED=str(tmp_path / "lin"), REFERENCE=pair["refs"], MATCH="order", THRESHOLD=20.0,
                         OUTPUT_TABLE=str(table)))
    row = [r for r in csv.DictReader(open(table)) if r["frame"] == "2"][0]
    mid = gdal.Open(str(tmp_path / "lin" / "frame_002.tif")).ReadAsArray().astype(np.float64)
    truth = pair["truth"][2, 0].astype(np.float64)
    for scale in (1, 4, 16):
        assert float(row[f"fss_{scale}"]) == pytest.approx(fss(mid, truth, 20.0, scale), abs=1e-9)


@pytest.mark.parametrize("method", ["pysteps-lk", "pysteps-vet"])
def test_interpolate_pysteps_methods(pair, tmp_path, method):
    pytest.importorskip("pysteps")
    out = tmp_path / method
    run("interpolate", dict(FIRST=pair["first"], SECOND=pair["second"], STEPS=STEPS, METHOD=method,
                            OUTPUT_FOLDER=str(out)))
    mid = gdal.Open(str(out / "frame_002.tif")).ReadAsArray()
    truth = pair["truth"]
    blend = 0.5 * (truth[0, 0] + truth[-1, 0])
    inner = (slice(6, -6), slice(6, -6))  # the pair is periodic: what enters at the border is unknowable
    err = np.abs(mid - truth[2, 0])[inner].mean()
    assert err < 0.5 * np.abs(blend - truth[2, 0])[inner].mean(), err


def test_evaluate_identical_frames_is_zero_error_by_order(pair, tmp_path):
    table = tmp_path / "same.gpkg"
    run("evaluate", dict(GENERATED_LAYERS=pair["refs"], REFERENCE=pair["refs"], MATCH="order",
                         OUTPUT_TABLE=str(table)))
    from osgeo import ogr

    ds = ogr.Open(str(table))
    maes = [f["mae"] for f in ds.GetLayer(0)]
    assert len(maes) == STEPS + 1 and max(maes) == 0.0


def test_interpolate_from_the_shell(pair, tmp_path):
    qgis_process("run", "inbetween:interpolate", "--", f"FIRST={pair['first']}", f"SECOND={pair['second']}",
                 "STEPS=2", "METHOD=linear", f"OUTPUT_FOLDER={tmp_path / 'f'}")
    assert sorted(p.name for p in (tmp_path / "f").glob("*.tif")) == ["frame_000.tif", "frame_001.tif",
                                                                       "frame_002.tif"]
