"""End to end through real Processing (in-process, offscreen QGIS) and real qgis_process:
a synthetic georeferenced pair with a known translation → model → frames and field against the truth."""
import json
import math

import numpy as np
import pytest
from osgeo import gdal

from helpers import qgis_process, translation_geotiffs, write_geotiff

DX, DY, PIXEL, STEPS = 6.0, -4.0, 250.0, 4  # 6 px east, 4 px north in one hour
TRAIN = dict(STEPS=STEPS, PRESET="fast", ITERATIONS=30, PATCH_SIZE=48, BATCH_SIZE=2, SEED=0)


def run(alg, params, feedback=None):
    import processing
    from qgis.core import QgsProcessingContext, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return processing.run(f"inbetween:{alg}", params, context=context, feedback=feedback)


def read(path):
    ds = gdal.Open(str(path))
    return ds, ds.ReadAsArray().astype(np.float32)


@pytest.fixture(scope="module")
def trained(provider, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    first, second, truth = translation_geotiffs(folder, size=96, dx=DX, dy=DY, steps=STEPS, pixel=PIXEL)
    model = str(folder / "pair.inbetween")
    result = run("train", dict(FIRST=first, SECOND=second, OUTPUT_MODEL=model,
                               OUTPUT_LOSS_PLOT=str(folder / "loss.png"), **TRAIN))
    return dict(folder=folder, first=first, second=second, truth=truth, model=result["OUTPUT_MODEL"],
                plot=result["OUTPUT_LOSS_PLOT"])


def test_train_writes_model_and_loss_plot(trained):
    from model.modelfile import load_model

    _, header = load_model(trained["model"])
    assert header["steps"] == STEPS
    assert header["extra"]["times"][0].startswith("2016-09-28T14:45")
    assert header["bands"] == 1 and header["extra"]["width"] == 96
    assert gdal.Open(trained["plot"]) is not None  # a real PNG


def test_frames_match_grid_times_and_truth(trained, tmp_path):
    result = run("generateframes", dict(MODEL=trained["model"], FIRST=trained["first"], SECOND=trained["second"],
                                        OUTPUT_FOLDER=str(tmp_path / "frames"),
                                        OUTPUT_PROJECT=str(tmp_path / "frames.qgz")))
    paths = result["OUTPUT_LAYERS"]
    assert [p.rsplit("/", 1)[-1] for p in paths] == [f"frame_{j:03d}.tif" for j in range(STEPS + 1)]
    src = gdal.Open(trained["first"])
    truth = trained["truth"]
    expected_times = ["2016:09:28 14:45:00", "2016:09:28 15:00:00", "2016:09:28 15:15:00", "2016:09:28 15:30:00",
                      "2016:09:28 15:45:00"]
    for j, path in enumerate(paths):
        ds, frame = read(path)
        assert ds.GetGeoTransform() == src.GetGeoTransform()
        assert ds.GetProjection() == src.GetProjection()
        assert ds.GetMetadataItem("TIFFTAG_DATETIME") == expected_times[j]
        inner = (slice(12, -12), slice(12, -12))  # the periodic shift's wrap-around is not advection
        error = np.abs(frame[inner] - truth[j, 0][inner]).mean()
        blend = (1 - j / STEPS) * truth[0, 0] + j / STEPS * truth[-1, 0]
        blend_error = np.abs(blend[inner] - truth[j, 0][inner]).mean()
        if j in (0, STEPS):
            assert error < 1e-4  # endpoints reproduced as given
        else:
            assert error < 1.5, (j, error)  # dBZ, on a field spanning -10..55
            assert error < 0.5 * blend_error, (j, error, blend_error)
    assert (tmp_path / "frames.qgz").is_file()


def test_field_is_in_metres_per_second_and_points_the_right_way(trained, tmp_path):
    from osgeo import ogr

    import re
    from helpers import collecting_feedback

    out = str(tmp_path / "field.gpkg")
    feedback = collecting_feedback()
    run("exportfield", dict(MODEL=trained["model"], FIRST=trained["first"], SECOND=trained["second"], SPACING=8,
                            OUTPUT=out, OUTPUT_NETCDF=str(tmp_path / "field.nc"),
                            OUTPUT_PLOT=str(tmp_path / "field.png")), feedback=feedback)
    ds = ogr.Open(out)  # keep the dataset alive while its layer is used
    layer = ds.GetLayer(0)
    names = [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(layer.GetLayerDefn().GetFieldCount())]
    assert {"step", "time", "u", "v", "speed", "direction"} <= set(names)
    rows = [(f["step"], f["u"], f["v"], f["speed"], f["direction"]) for f in layer]
    steps = {r[0] for r in rows}
    assert steps == set(range(STEPS))
    u = np.mean([r[1] for r in rows])
    v = np.mean([r[2] for r in rows])
    true_u, true_v = DX * PIXEL / 3600, -DY * PIXEL / 3600  # east and north, m/s
    assert abs(math.hypot(u, v) / math.hypot(true_u, true_v) - 1) < 0.1, (u, v)
    direction = math.degrees(math.atan2(u, v)) % 360
    assert abs(direction - math.degrees(math.atan2(true_u, true_v))) < 5, direction
    # the log says the same mean vector
    said = re.search(r"Their mean: ([0-9.]+) m s-1 towards ([0-9]+)°", " ".join(feedback.infos))
    assert said and abs(float(said.group(1)) - math.hypot(u, v)) < 0.01 and abs(float(said.group(2)) - direction) <= 1
    assert (tmp_path / "field.nc").is_file() and (tmp_path / "field.png").is_file()


def test_desktop_run_loads_styled_layers_and_plays_frame_by_frame(trained, tmp_path):
    """As in the desktop: runAndLoadResults, then the map canvas's Temporal Controller steps frame by frame."""
    import processing
    from qgis.core import (QgsGraduatedSymbolRenderer, QgsInterval, QgsProject, QgsSingleBandGrayRenderer,
                           QgsTemporalNavigationObject)
    from qgis.gui import QgsMapCanvas

    project = QgsProject.instance()
    project.clear()
    canvas = QgsMapCanvas()  # a real canvas with its own navigation object, as the desktop's main canvas
    navigation = QgsTemporalNavigationObject(canvas)
    canvas.setTemporalController(navigation)
    assert navigation.navigationMode() == QgsTemporalNavigationObject.NavigationOff
    # FIRST/SECOND left empty: the pair the model was trained on
    processing.runAndLoadResults("inbetween:generateframes", dict(
        MODEL=trained["model"], OUTPUT_FOLDER=str(tmp_path / "loaded")))
    processing.runAndLoadResults("inbetween:exportfield", dict(
        MODEL=trained["model"], SPACING=16, OUTPUT=str(tmp_path / "field.gpkg")))

    assert navigation.navigationMode() == QgsTemporalNavigationObject.Animated
    assert navigation.frameDuration() == QgsInterval(15 * 60)
    extent = navigation.temporalExtents()
    assert extent.begin().toUTC().toString("hh:mm") == "14:45" and extent.end().toUTC().toString("hh:mm") == "16:00"
    assert navigation.totalFrameCount() == STEPS + 1  # the first press of Play shows each frame once
    ts = project.timeSettings()
    assert ts.timeStep() == 15 * 60 and ts.temporalRange() == extent

    root = project.layerTreeRoot()
    group = root.findGroup("In-between frames")
    frames = [node.layer() for node in group.findLayers()]
    assert [layer.name() for layer in frames] == [f"frame_{j:03d} 2016-09-28 {t} UTC" for j, t in
                                                  enumerate(("14:45", "15:00", "15:15", "15:30", "15:45"))]
    assert not any(node.isExpanded() for node in group.findLayers())
    starts, stretches = [], set()
    for layer in frames:
        assert isinstance(layer.renderer(), QgsSingleBandGrayRenderer)
        ce = layer.renderer().contrastEnhancement()
        stretches.add((ce.minimumValue(), ce.maximumValue()))
        props = layer.temporalProperties()
        assert props.isActive()
        rng = props.fixedTemporalRange()
        assert rng.begin().secsTo(rng.end()) == 15 * 60
        starts.append(rng.begin().toUTC().toString("hh:mm"))
    assert starts == ["14:45", "15:00", "15:15", "15:30", "15:45"]
    assert len(stretches) == 1  # one min/max shared by all frames
    field = project.mapLayersByName("advection field")[0]
    assert root.children()[0].layerId() == field.id()  # above the frames group, not inside it
    assert isinstance(field.renderer(), QgsGraduatedSymbolRenderer)
    assert field.temporalProperties().isActive()
    # frame 2 of the controller shows frame_002 and the arrows of step 2 only
    navigation.setCurrentFrameNumber(2)
    now = navigation.dateTimeRangeForFrameNumber(2)
    shown = [layer.name()[:9] for layer in frames if layer.temporalProperties().isVisibleInTemporalRange(now)]
    assert shown == ["frame_002"]
    project.clear()


def test_qgis_process_runs_the_algorithms_with_json_and_styles_their_outputs(trained, tmp_path):
    from osgeo import ogr

    model = tmp_path / "shell.inbetween"
    args = [f"{k}={v}" for k, v in dict(FIRST=trained["first"], SECOND=trained["second"], OUTPUT_MODEL=model,
                                        STEPS=2, PRESET="fast", ITERATIONS=5, PATCH_SIZE=32,
                                        BATCH_SIZE=1).items()]
    result = qgis_process("--json", "run", "inbetween:train", "--", *args)
    payload = json.loads(result.stdout[result.stdout.index("{"):])
    assert payload["results"]["OUTPUT_MODEL"] == str(model)
    assert model.is_file()
    assert "inbetween:train: " in result.stderr  # progress on stderr, even with --json
    assert "iteration" in json.dumps(payload["log"])
    # the pair as radar reflectivity (band description "... (dBZ)"): frames styled with the reflectivity ramp
    pair = []
    for name in ("first", "second"):
        ds = gdal.Translate(str(tmp_path / f"{name}_dbz.tif"), trained[name])
        ds.GetRasterBand(1).SetDescription("reflectivity (dBZ)")
        ds = None
        pair.append(tmp_path / f"{name}_dbz.tif")
    qgis_process("run", "inbetween:generateframes", "--", f"MODEL={model}", f"FIRST={pair[0]}",
                 f"SECOND={pair[1]}", f"OUTPUT_FOLDER={tmp_path / 'frames'}")
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
        "frame_000.qml", "frame_000.tif", "frame_001.qml", "frame_001.tif", "frame_002.qml", "frame_002.tif"]
    qgis_process("run", "inbetween:exportfield", "--", f"MODEL={model}", f"FIRST={pair[0]}", f"SECOND={pair[1]}",
                 "SPACING=16", f"OUTPUT={tmp_path / 'field.gpkg'}")
    # the styles travel with the files: opened later, QGIS draws them as the desktop run did
    from qgis.core import QgsRasterLayer, QgsVectorLayer
    frame = QgsRasterLayer(str(tmp_path / "frames" / "frame_001.tif"), "f", "gdal")
    assert frame.renderer().type() == "singlebandpseudocolor"
    assert [label for label, _colour in frame.renderer().legendSymbologyItems()][:2] == ["5 dBZ", "15 dBZ"]
    styles = ogr.Open(str(tmp_path / "field.gpkg")).ExecuteSQL(
        "SELECT f_table_name, useAsDefault FROM layer_styles")
    assert [(f["f_table_name"], f["useAsDefault"]) for f in styles] == [("advection_field", 1)]
    field = QgsVectorLayer(str(tmp_path / "field.gpkg"), "f", "ogr")
    assert field.renderer().type() == "graduatedSymbol"
    assert field.renderer().ranges()[0].label().endswith(" m/s")


# ---------------------------------------------------------------------------------------------- bad input
def _fails(alg, params, match):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match=match):
        run(alg, params)


def test_band_count_mismatch_is_a_clear_error(provider, tmp_path):
    a = write_geotiff(tmp_path / "a.tif", np.random.rand(64, 64), when="2020:01:01 00:00:00")
    b = write_geotiff(tmp_path / "b.tif", np.random.rand(2, 64, 64), when="2020:01:01 01:00:00")
    _fails("train", dict(FIRST=a, SECOND=b, OUTPUT_MODEL=str(tmp_path / "m.inbetween"), **TRAIN), "band")
    assert not (tmp_path / "m.inbetween").exists()


def test_missing_and_reversed_times_are_clear_errors(provider, tmp_path):
    a = write_geotiff(tmp_path / "a.tif", np.random.rand(64, 64))
    b = write_geotiff(tmp_path / "b.tif", np.random.rand(64, 64))
    _fails("train", dict(FIRST=a, SECOND=b, OUTPUT_MODEL=str(tmp_path / "m.inbetween"), **TRAIN), "START_TIME")
    _fails("train", dict(FIRST=a, SECOND=b, START_TIME="2020-01-01T02:00:00", END_TIME="2020-01-01T01:00:00",
                         OUTPUT_MODEL=str(tmp_path / "m.inbetween"), **TRAIN), "(?i)before|after")
    assert not (tmp_path / "m.inbetween").exists()


def test_truncated_model_file_is_a_clear_error_and_writes_nothing(trained, tmp_path):
    broken = tmp_path / "broken.inbetween"
    broken.write_bytes(open(trained["model"], "rb").read()[:200])
    _fails("generateframes", dict(MODEL=str(broken), FIRST=trained["first"], SECOND=trained["second"],
                                  OUTPUT_FOLDER=str(tmp_path / "frames")), "(?i)model file|truncated|corrupt")
    foreign = tmp_path / "foreign.inbetween"
    foreign.write_text("not a model")
    _fails("exportfield", dict(MODEL=str(foreign), FIRST=trained["first"], SECOND=trained["second"],
                               OUTPUT=str(tmp_path / "f.gpkg")), "(?i)model file|not an in-between")
    assert not list((tmp_path).glob("frames/*.tif")) and not (tmp_path / "f.gpkg").exists()


def test_cancel_stops_training_and_writes_no_model(trained, tmp_path):
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda p: feedback.cancel() if p > 5 else None)
    model = tmp_path / "canceled.inbetween"
    params = dict(TRAIN, ITERATIONS=200)
    with pytest.raises(QgsProcessingException, match="Canceled by the user after"):
        run("train", dict(FIRST=trained["first"], SECOND=trained["second"], OUTPUT_MODEL=str(model), **params),
            feedback=feedback)
    assert not model.exists() and not list(tmp_path.glob("*.tmp"))


def test_training_feedback_is_one_line_per_report_with_elapsed_time_and_eta(trained, tmp_path):
    import re
    from helpers import collecting_feedback

    feedback = collecting_feedback()
    progress = []
    feedback.progressChanged.connect(progress.append)
    run("train", dict(FIRST=trained["first"], SECOND=trained["second"], OUTPUT_MODEL=str(tmp_path / "m.inbetween"),
                      **dict(TRAIN, ITERATIONS=40)), feedback=feedback)
    lines = [i for i in feedback.infos if i.startswith("Iteration ")]
    assert len(lines) == 20  # every 2nd of 40 iterations, one line each
    span = r"(?:\d+ h \d+ min|\d+ min \d+ s|\d+ s)"   # base.elapsed (minutes on a loaded machine)
    assert re.fullmatch(rf"Iteration 2/40 · error [0-9.e+-]+ · {span}, {span} left", lines[0]), lines[0]
    assert re.fullmatch(rf"Iteration 40/40 · error [0-9.e+-]+ · {span}", lines[-1]), lines[-1]
    # the motion estimate moves the bar before the first iteration (it used to sit at 0 %)
    motion = [p for p in progress if 0 < p <= 5]
    assert motion and progress.index(motion[-1]) < progress.index(next(p for p in progress if p > 5))
    assert any(i.startswith("Estimating the motion: ") for i in feedback.infos)


def _train_logged(tmp_path, seq, times=("2016:07:11 22:00:00", "2016:07:11 23:00:00"), **write):
    """The sequence's first and last frames as GeoTIFFs through inbetween:train with its defaults (8 steps);
    the real QgsProcessingFeedback that kept what it said."""
    from helpers import collecting_feedback, write_geotiff

    first = write_geotiff(tmp_path / "first.tif", seq[0], when=times[0], **write)
    second = write_geotiff(tmp_path / "second.tif", seq[-1], when=times[1], **write)
    feedback = collecting_feedback()
    run("train", dict(FIRST=first, SECOND=second, OUTPUT_MODEL=str(tmp_path / "m.inbetween"), STEPS=8),
        feedback=feedback)
    return feedback


def test_training_says_when_the_pair_turns(provider, tmp_path):
    """What a user reads when the start found a turn (fieldinit's linear candidate): bench/cases.py's rotation,
    textured rain turned 40° counter-clockwise in an hour, through inbetween:train with its defaults."""
    import re
    from bench.cases import synthetic_case

    feedback = _train_logged(tmp_path, synthetic_case("syn-rotation")["seq"])
    said = [i for i in feedback.infos if i.startswith("Estimating the motion: done")]
    turn = re.search(r"one linear motion \(turning (-?[0-9.]+)° counter-clockwise", said[-1] if said else "")
    assert turn and abs(float(turn.group(1)) - 40.0) < 1.0, said


def test_training_says_how_each_floe_turns_and_drifts(provider, tmp_path):
    """An ice mask (bench/cases.py's floe that turns 30° counter-clockwise as it breaks into three pieces) as
    bytes 0/255 through inbetween:train with its defaults: the log names the rigid pieces and their turns."""
    import re
    from bench.cases import floe_breakup
    from osgeo import gdal

    feedback = _train_logged(tmp_path, floe_breakup("syn-floes-turn-split")["seq"] * 255,
                             ("2020:03:19 16:00:00", "2020:03:20 16:00:00"), dtype=gdal.GDT_Byte)
    said = [i for i in feedback.infos if i.startswith("Estimating the motion: done")]
    turns = re.search(r"3 rigid pieces, turning from ([0-9.]+)° counter-clockwise to ([0-9.]+)° counter-clockwise",
                      said[-1] if said else "")
    assert turns and all(abs(float(t) - 30.0) < 1.0 for t in turns.groups()), said


def test_a_floe_mask_on_another_grid_keeps_its_pieces(provider, tmp_path):
    """The floe above with SECOND on a grid 0.4 px east and 0.3 px south of FIRST's (another scene's grid): it is
    warped nearest-neighbour, stays a mask, and the start still fits the three rigid pieces and their turn
    (warped bilinear, the pair was no longer a mask and one smooth motion was taken)."""
    import re
    from bench.cases import floe_breakup
    from helpers import collecting_feedback, write_geotiff
    from osgeo import gdal

    seq = floe_breakup("syn-floes-turn-split")["seq"] * 255
    first = write_geotiff(tmp_path / "first.tif", seq[0], when="2020:03:19 16:00:00", dtype=gdal.GDT_Byte)
    second = write_geotiff(tmp_path / "second.tif", seq[-1], (500100.0, 250.0, 0.0, 6999925.0, 0.0, -250.0),
                           when="2020:03:20 16:00:00", dtype=gdal.GDT_Byte)
    feedback = collecting_feedback()
    run("train", dict(FIRST=first, SECOND=second, OUTPUT_MODEL=str(tmp_path / "m.inbetween"), STEPS=8),
        feedback=feedback)
    assert any("nearest neighbour" in w for w in feedback.warnings), feedback.warnings
    said = [i for i in feedback.infos if i.startswith("Estimating the motion: done")]
    turns = re.search(r"3 rigid pieces, turning from ([0-9.]+)° counter-clockwise to ([0-9.]+)° counter-clockwise",
                      said[-1] if said else "")
    assert turns and all(abs(float(t) - 30.0) < 1.5 for t in turns.groups()), said


def test_training_warns_when_the_motion_may_exceed_the_search(provider, tmp_path):
    """bench/cases.py's inflow case (textured rain moving (-56, -24) px over a 128 px window, beyond the shift
    search's ±51 px) through inbetween:train: the caution is a QGIS warning, not an information line."""
    from bench.cases import synthetic_case

    feedback = _train_logged(tmp_path, synthetic_case("syn-inflow-outflow")["seq"])
    warned = [w for w in feedback.warnings if w.startswith("the overall shift found, (-51, -24) px, lies at the edge")]
    assert warned and "±51 px" in warned[0], feedback.warnings
    assert not any("overall shift" in i for i in feedback.infos)


def test_training_warns_when_two_motions_explain_the_pair(provider, tmp_path):
    """Stripes that move half their period in an hour (32 px at 250 m): east or west explain the pair alike.
    inbetween:train says so as QGIS warnings, the two shifts in pixels and as motions (2.22 m/s towards 90° and
    270°); a plain translation (the inflow case's textured rain) gets no such warning."""
    import re
    from bench.cases import synthetic_case

    yy, xx = np.mgrid[0:160, 0:160].astype(np.float32)
    seq = [20 + 15 * np.sin(2 * np.pi * (xx - sx) / 64) + 2 * np.sin(2 * np.pi * yy / 97) for sx in (0.0, 32.0)]
    warnings = _train_logged(tmp_path, seq).warnings
    said = [w for w in warnings if w.startswith("the motion is ambiguous")]
    assert said and "(32, 0) px" in said[0] and "(-32, 0) px" in said[0], warnings
    motions = [w for w in warnings if w.startswith("The two overall shifts the pair cannot tell apart")]
    found = re.findall(r"([0-9.]+) m s-1 towards ([0-9]+)°", motions[0] if motions else "")
    assert sorted(int(d) for _, d in found) == [90, 270] and all(abs(float(v) - 2.22) < 0.01 for v, _ in found), \
        motions
    plain = _train_logged(tmp_path, synthetic_case("syn-shift-texture")["seq"]).warnings
    assert not [w for w in plain if "ambiguous" in w or "cannot tell apart" in w], plain


def test_training_says_how_fast_and_which_way_the_content_moves(provider, tmp_path):
    """The start's net motion in m/s and compass terms, in the log of inbetween:train with its defaults: the
    known translation (6 px east, 4 px north in an hour at 250 m: 1.00 m/s towards 56°)."""
    import re
    from helpers import collecting_feedback

    first, second, _truth = translation_geotiffs(tmp_path, size=96, dx=DX, dy=DY, steps=STEPS, pixel=PIXEL)
    feedback = collecting_feedback()
    run("train", dict(FIRST=first, SECOND=second, OUTPUT_MODEL=str(tmp_path / "m.inbetween"), STEPS=STEPS),
        feedback=feedback)
    said = re.search(r"Motion of what the pair shows .*: ([0-9.]+) m s-1 on average; net ([0-9.]+) m s-1 towards "
                     r"([0-9]+)° \(clockwise from grid north\)", " ".join(feedback.infos))
    true_u, true_v = DX * PIXEL / 3600, -DY * PIXEL / 3600
    assert said, feedback.infos
    for speed in (said.group(1), said.group(2)):  # one translation: the mean and the net speed agree
        assert abs(float(speed) / math.hypot(true_u, true_v) - 1) < 0.05, said.group(0)
    assert abs(float(said.group(3)) - math.degrees(math.atan2(true_u, true_v))) <= 3, said.group(0)


# ---------------------------------------------------------------------------------------------- modeler
MODEL3 = __import__("helpers").ROOT / "processing_provider" / "pipeline.model3"


def _model3_params(trained, out):
    return {"first": trained["first"], "second": trained["second"], "steps": 2, "iterations": 3, "spacing": 16,
            "train:model": str(out / "m.inbetween"), "generate:frames": str(out / "frames"),
            "export:field": str(out / "field.gpkg")}


def _check_model3_outputs(out):
    assert (out / "m.inbetween").is_file()
    assert sorted(p.name for p in (out / "frames").glob("*.tif")) == ["frame_000.tif", "frame_001.tif",
                                                                       "frame_002.tif"]
    assert (out / "field.gpkg").is_file()


def test_graphical_model_runs_in_processing(trained, tmp_path):
    import processing
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL3))
    assert [c.algorithmId() for c in model.childAlgorithms().values()].count("inbetween:train") == 1
    processing.run(model, _model3_params(trained, tmp_path))
    _check_model3_outputs(tmp_path)


def test_pipeline_runs_with_qgis_process(trained, tmp_path):
    """The shipped model is an algorithm of the provider: inbetween:pipeline in qgis_process."""
    args = [f"{k}={v}" for k, v in _model3_params(trained, tmp_path).items()]
    qgis_process("run", "inbetween:pipeline", "--", *args)
    _check_model3_outputs(tmp_path)
    assert (tmp_path / "frames" / "frame_001.qml").is_file()


def test_small_constant_and_disjoint_inputs_are_clear_errors(provider, tmp_path):
    when = dict(START_TIME="2020-01-01T00:00:00", END_TIME="2020-01-01T01:00:00")
    out = dict(OUTPUT_MODEL=str(tmp_path / "m.inbetween"), **TRAIN, **when)
    tiny = [write_geotiff(tmp_path / f"t{i}.tif", np.random.rand(10, 10)) for i in range(2)]
    _fails("train", dict(FIRST=tiny[0], SECOND=tiny[1], **out), "(?i)small|pixels")
    flat = [write_geotiff(tmp_path / f"c{i}.tif", np.full((64, 64), 3.0)) for i in range(2)]
    _fails("train", dict(FIRST=flat[0], SECOND=flat[1], **out), "(?i)constant")
    far = write_geotiff(tmp_path / "far.tif", np.random.rand(64, 64), (900000.0, 250.0, 0, 7000000.0, 0, -250.0))
    near = write_geotiff(tmp_path / "near.tif", np.random.rand(64, 64))
    _fails("train", dict(FIRST=near, SECOND=far, **out), "(?i)overlap")
    assert not (tmp_path / "m.inbetween").exists()
