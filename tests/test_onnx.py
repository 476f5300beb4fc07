"""ONNX: export (inbetween:exportonnx), onnxruntime-only inference equal to torch's, and no torch on that path.

Tolerance: the .onnx and torch differ by float32 rounding only — measured ≲ 1e-5 in normalised units
on the frames and ≲ 1e-5 px on the fields; the tests allow 1e-4 (frames in data units: 1e-4 × range)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal

from helpers import ROOT, translation_geotiffs

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TOL = 1e-4


@pytest.fixture(scope="module", params=["accurate", "paper"])
def exported(request, provider, tmp_path_factory):
    from model.presets import make_config
    from model.training import train_pair
    from model.modelfile import save_model
    from inbetween.processing_provider.raster_io import read_pair
    from test_algorithms import run

    folder = tmp_path_factory.mktemp("onnx")
    first, second, _ = translation_geotiffs(folder, size=72, steps=3)
    pair = read_pair(first, second)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = make_config("fast", request.param, steps=3, iterations=4, patch_size=32, batch_size=2)
    result = train_pair(pair.x0, pair.x1, pair.valid, config=cfg, seed=0)
    torch.set_num_threads(threads)
    model = str(folder / "m.inbetween")
    save_model(model, result, {"times": ["2016-09-28T14:45:00+00:00", "2016-09-28T15:45:00+00:00"],
                               "width": 72, "height": 72})
    out = run("exportonnx", dict(MODEL=model, OUTPUT=str(folder / "m.onnx")))
    assert out["MAX_ABS_DIFF_FRAMES"] < TOL and out["MAX_ABS_DIFF_FIELDS"] < TOL
    return dict(folder=folder, first=first, second=second, model=model, onnx=out["OUTPUT"], pair=pair,
                mode=request.param)


def test_onnx_is_self_describing(exported):
    import onnx
    from model.modelfile import read_header

    proto = onnx.load(exported["onnx"])
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["inbetween"])
    header = read_header(exported["model"])
    assert meta["steps"] == header["steps"] == 3 and meta["config"] == header["config"]
    assert meta["extra"]["times"] == header["extra"]["times"]
    assert meta["onnx"]["opset"] >= 16
    # accurate: the initial flow, the pair's border weight, validity, kind of motion and per-step fields come in
    # from outside
    assert meta["onnx"]["inputs"] == (["x0", "x1", "flow", "border", "seen", "several", "steps"]
                                      if exported["mode"] == "accurate"
                                      else ["x0", "x1", "coords"])
    assert any(n.op_type == "GridSample" for n in proto.graph.node)
    # the frames' peaks are kept by the runner around the graph, as the torch runner does, from the same config
    from model.onnx_export import OnnxTileRunner

    assert OnnxTileRunner(exported["onnx"]).tail_match == header["config"].get("tail_match", 0.0)
    assert header["config"]["tail_match"] == (0.98 if exported["mode"] == "accurate" else 0.0)


def test_generateframes_and_exportfield_from_onnx_equal_torch(exported, tmp_path):
    from test_algorithms import run
    from osgeo import ogr

    out = {}
    for kind in ("model", "onnx"):
        res = run("generateframes", dict(MODEL=exported[kind], FIRST=exported["first"], SECOND=exported["second"],
                                         OUTPUT_FOLDER=str(tmp_path / kind)))
        out[kind] = np.stack([gdal.Open(p).ReadAsArray() for p in res["OUTPUT_LAYERS"]])
        fres = run("exportfield", dict(MODEL=exported[kind], FIRST=exported["first"], SECOND=exported["second"],
                                       SPACING=8, OUTPUT=str(tmp_path / f"{kind}.gpkg")))
        ds = ogr.Open(fres["OUTPUT"])
        out[kind + "_uv"] = np.array([(f["u"], f["v"]) for f in ds.GetLayer(0)])
        ds = None
    span = float(np.nanmax(out["model"]) - np.nanmin(out["model"]))
    assert out["onnx"].shape == out["model"].shape == (4, 72, 72)
    assert np.nanmax(np.abs(out["onnx"] - out["model"])) <= TOL * span
    speed = np.abs(out["model_uv"]).max()
    assert out["onnx_uv"].shape == out["model_uv"].shape
    assert np.abs(out["onnx_uv"] - out["model_uv"]).max() <= TOL * max(speed, 1.0)


def test_onnx_path_runs_without_torch(exported, tmp_path):
    """Streamed frames from the .onnx in a process where importing torch fails."""
    code = f"""
import sys
sys.modules['torch'] = None
sys.path[:0] = [{str(ROOT.parent)!r}, {str(ROOT / '.qgis-profile' / 'python' / 'plugins')!r}]
from inbetween.processing_provider.raster_io import open_pair_windows, FrameWriter
from inbetween.model.onnx_export import OnnxTileRunner
from inbetween.model.inference import iter_frame_blocks
runner = OnnxTileRunner({exported['onnx']!r}, 'auto')
src = open_pair_windows({exported['first']!r}, {exported['second']!r})
with FrameWriter({str(tmp_path / 'frames')!r}, src.grid, None, runner.steps + 1) as w:
    for r, q, b in iter_frame_blocks(runner, src, tile=48, overlap=12):
        w.write(r, q, b)
    print(len(w.commit()), runner.providers)
assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("4 ") and "CPUExecutionProvider" in res.stdout


def test_a_damaged_onnx_is_refused(exported, tmp_path):
    """4 KB overwritten in the middle of the .onnx: refused by the checksum of its graph, nothing written."""
    from qgis.core import QgsProcessingException
    from test_algorithms import run

    data = bytearray(open(exported["onnx"], "rb").read())
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(bytes(data))
    with pytest.raises(QgsProcessingException, match="MODEL: .*is damaged"):
        run("generateframes", dict(MODEL=str(bad), FIRST=exported["first"], SECOND=exported["second"],
                                   OUTPUT_FOLDER=str(tmp_path / "frames")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


@pytest.mark.parametrize("options", [dict(flow_init=False), dict(border_trust=False),
                                     dict(gaps_as_border=False, whole_stretch=False)])
def test_graphs_with_some_optional_inputs_export_and_agree(options, tmp_path):
    """The optional inputs (flow, border, seen, several, steps) are exported by name, so a model that has some
    of them and not the ones before (no initial flow but a border weight; several motions without a
    border weight) exports a graph with exactly its inputs, equal to torch."""
    from model.modelfile import save_model
    from model.onnx_export import export_onnx, read_onnx_header
    from model.presets import make_config
    from model.training import train_pair

    x0 = np.random.default_rng(0).random((1, 40, 40)).astype(np.float32)
    x1 = np.roll(x0, (2, 3), (1, 2))
    r = train_pair(x0, x1, config=make_config("fast", steps=3, iterations=0, **options), seed=0)
    save_model(str(tmp_path / "m.inbetween"), r, {})
    worst = export_onnx(str(tmp_path / "m.inbetween"), str(tmp_path / "m.onnx"))
    assert worst["frames"] < TOL and worst["fields"] < TOL
    m = r.model
    expected = (["x0", "x1"] + ["flow"] * m.cfg.flow_init + ["border"] * m.uses_border + ["seen"] * m.uses_seen
                + ["several"] * m.uses_several + ["steps"] * m.cfg.flow_init)
    assert read_onnx_header(str(tmp_path / "m.onnx"))["onnx"]["inputs"] == expected
