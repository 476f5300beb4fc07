"""The battery of bad inputs (issue 14), kept as tests: real files, real qgis_process or processing.run, tiny
sizes, two training iterations.  Each case checks the exit status (or exception), that the message names
the parameter and the fix, that nothing the user had was deleted or changed (hashes and mtimes of every
file before and after) and that no partial or temporary file is left."""
import hashlib
import os
import re
import resource
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from helpers import ROOT, collecting_feedback, translation_geotiffs, write_geotiff

UTC = timezone.utc
TRAIN = dict(STEPS=2, ITERATIONS=2, PATCH_SIZE=32, BATCH_SIZE=1, SEED=0)
TEMP = re.compile(r"^\.inbetween-|\.tmp$|\.part|^\..*\.part")


# ------------------------------------------------------------------------------------------------ helpers
def snapshot(*folders):
    """{path: (sha256, mtime_ns)} of every file below ``folders`` (hidden ones too)."""
    out = {}
    for folder in folders:
        for root, _dirs, files in os.walk(folder):
            for f in files:
                p = os.path.join(root, f)
                out[p] = (hashlib.sha256(Path(p).read_bytes()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


def leftovers(*folders):
    """Temporary or partial files and folders left anywhere below ``folders``."""
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            found += [os.path.join(root, n) for n in dirs + files if TEMP.search(n)]
    return found


def cli(alg, params, env=None, preexec_fn=None, timeout=600, popen=None):
    """scripts/qgis-process run inbetween:ALG -- KEY=VALUE ... (lists as repeated KEY=VALUE); with ``popen`` (an
    open file for the output) the running process."""
    args = [str(ROOT / "scripts" / "qgis-process"), "run", f"inbetween:{alg}", "--"]
    for k, v in params.items():
        args += [f"{k}={x}" for x in (v if isinstance(v, list) else [v])]
    kw = dict(env={**os.environ, **(env or {})}, preexec_fn=preexec_fn, text=True)
    if popen:
        return subprocess.Popen(args, stdout=popen, stderr=subprocess.STDOUT, **kw)
    return subprocess.run(args, capture_output=True, timeout=timeout, **kw)


def output_of(result):
    return result.stdout + result.stderr


def run(alg, params, feedback=None):
    import processing
    from qgis.core import QgsProcessingContext, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return processing.run(f"inbetween:{alg}", params, context=context, feedback=feedback or collecting_feedback())


def fails(alg, params, *patterns, feedback=None):
    """Run in-process, expect a QgsProcessingException whose message matches every pattern; the message."""
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException) as error:
        run(alg, params, feedback)
    message = str(error.value)
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    return message


def tif_time(path):
    ds = gdal.Open(str(path))
    return ds.GetMetadataItem("TIFFTAG_DATETIME")


@pytest.fixture(scope="module")
def pair(provider, tmp_path_factory):
    """A 48 px georeferenced pair (14:45 and 15:45 UTC in TIFFTAG_DATETIME) and a 2-step model trained on it."""
    folder = tmp_path_factory.mktemp("pair")
    first, second, _ = translation_geotiffs(folder, size=48, steps=2)
    model = str(folder / "pair.inbetween")
    run("train", dict(FIRST=first, SECOND=second, OUTPUT_MODEL=model, OUTPUT_LOSS_PLOT="", **TRAIN))
    return dict(folder=folder, first=first, second=second, model=model)


def copy_pair(pair, folder, names=("a.tif", "b.tif"), when=(None, None), **kw):
    """FIRST and SECOND's data written again in ``folder`` with other times (None: no time at all)."""
    os.makedirs(folder, exist_ok=True)
    out = []
    for src, name, t in zip((pair["first"], pair["second"]), names, when):
        ds = gdal.Open(src)
        out.append(write_geotiff(Path(folder) / name, ds.ReadAsArray(), when=t, **kw))
    return out


# ------------------------------------------------------------- 1. never delete or overwrite the user's files
def test_1_input_sequence_folder_is_refused_and_left_untouched(pair, tmp_path):
    """The input sequence's own folder as OUTPUT_FOLDER: SECOND, FIRST and the user's frames stay as they were."""
    seq = tmp_path / "seq"
    seq.mkdir()
    data = gdal.Open(pair["first"]).ReadAsArray()
    for j in range(13):
        write_geotiff(seq / f"frame_{j:03d}.tif", np.roll(data, j, axis=1), when=f"2016:09:28 14:{45 + j}:00")
    before = snapshot(seq)
    result = cli("generateframes", dict(MODEL=pair["model"], FIRST=seq / "frame_000.tif",
                                        SECOND=seq / "frame_012.tif", OUTPUT_FOLDER=seq))
    assert result.returncode != 0
    message = output_of(result)
    assert "OUTPUT_FOLDER" in message and "FIRST" in message and "choose another" in message, message
    assert snapshot(seq) == before and not leftovers(seq)


def test_1_frames_of_a_run_used_as_inputs_are_not_overwritten(pair, tmp_path):
    out = tmp_path / "out"
    run("generateframes", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"], OUTPUT_FOLDER=str(out)))
    before = snapshot(out)
    fails("generateframes", dict(MODEL=pair["model"], FIRST=str(out / "frame_000.tif"),
                                 SECOND=str(out / "frame_002.tif"), OUTPUT_FOLDER=str(out)),
          "OUTPUT_FOLDER", "holds FIRST", "choose another")
    fails("interpolate", dict(FIRST=str(out / "frame_000.tif"), SECOND=str(out / "frame_002.tif"), STEPS=2,
                              METHOD="linear", OUTPUT_FOLDER=str(out)), "OUTPUT_FOLDER", "holds FIRST")
    assert snapshot(out) == before and not leftovers(out)


def test_1_user_frame_beside_older_frames_is_kept_and_older_frames_are_replaced_with_a_note(pair, tmp_path):
    out = tmp_path / "out"
    run("interpolate", dict(FIRST=pair["first"], SECOND=pair["second"], STEPS=4, METHOD="linear",
                            OUTPUT_FOLDER=str(out)))
    user = write_geotiff(out / "frame_050.tif", np.ones((48, 48), np.float32))
    kept = snapshot(out)
    feedback = collecting_feedback()
    run("generateframes", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"],
                               OUTPUT_FOLDER=str(out)), feedback)
    now = snapshot(out)
    # the user's frame and the earlier run's frames 3 and 4 are untouched; frames 0..2 were replaced
    for name in ("frame_050.tif", "frame_003.tif", "frame_004.tif"):
        assert now[str(out / name)] == kept[str(out / name)]
    assert now[str(out / "frame_001.tif")] != kept[str(out / "frame_001.tif")]
    infos = "\n".join(feedback.infos)
    assert "replacing 3 frame(s) an earlier run wrote" in infos and "as for any output you name" in infos
    assert "3 other frame file(s)" in infos and "left as they are" in infos
    assert Path(user).exists() and not leftovers(out)
    # a frame file In-between did not write, under a name this run writes: refused before work
    os.remove(out / "frame_001.tif")
    write_geotiff(out / "frame_001.tif", np.ones((48, 48), np.float32))
    before = snapshot(out)
    fails("generateframes", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"],
                                 OUTPUT_FOLDER=str(out)), "OUTPUT_FOLDER", "frame_001.tif", "did not write",
          "new or empty output folder")
    assert snapshot(out) == before


# ----------------------------------------------------------------------- 2. the pair's own times win
def test_2_pair_times_win_over_the_model_and_speeds_follow_them(pair, tmp_path):
    later = copy_pair(pair, tmp_path / "later", when=("2016:10:01 00:00:00", "2016:10:01 00:30:00"))
    feedback = collecting_feedback()
    result = run("generateframes", dict(MODEL=pair["model"], FIRST=later[0], SECOND=later[1],
                                        OUTPUT_FOLDER=str(tmp_path / "frames")), feedback)
    assert [tif_time(p) for p in result["OUTPUT_LAYERS"]] == ["2016:10:01 00:00:00", "2016:10:01 00:15:00",
                                                               "2016:10:01 00:30:00"]
    assert any("frames and speeds use the pair's times" in i for i in feedback.infos)
    assert not any("fallback" in w for w in feedback.warnings)
    # the same motion in half the time: twice the speed
    from osgeo import ogr

    speeds = []
    for first, second, name in ((pair["first"], pair["second"], "hour"), (*later, "half")):
        out = str(tmp_path / f"{name}.gpkg")
        run("exportfield", dict(MODEL=pair["model"], FIRST=first, SECOND=second, SPACING=8, OUTPUT=out))
        ds = ogr.Open(out)
        speeds.append(np.mean([f.GetField("speed") for f in ds.GetLayer()]))
        ds = None
    assert speeds[1] == pytest.approx(2 * speeds[0], rel=1e-3)


def test_2_times_corrected_at_training_hold_for_the_models_own_pair(pair, tmp_path):
    """Times set at training (the metadata said 14:45 → 15:45, the user said 20:45 → 21:15) are the ones the
    frames and speeds of that same pair use afterwards; another pair keeps its own."""
    model = str(tmp_path / "corrected.inbetween")
    run("train", dict(FIRST=pair["first"], SECOND=pair["second"], OUTPUT_MODEL=model, OUTPUT_LOSS_PLOT="",
                      START_TIME="2016-09-28T20:45:00", END_TIME="2016-09-28T21:15:00", **TRAIN))
    feedback = collecting_feedback()
    result = run("generateframes", dict(MODEL=model, FIRST=pair["first"], SECOND=pair["second"],
                                        OUTPUT_FOLDER=str(tmp_path / "frames")), feedback)
    assert [tif_time(p) for p in result["OUTPUT_LAYERS"]] == ["2016:09:28 20:45:00", "2016:09:28 21:00:00",
                                                               "2016:09:28 21:15:00"]
    assert any("the pair the model was trained on" in i and "14:45" in i for i in feedback.infos), feedback.infos
    later = copy_pair(pair, tmp_path / "later", when=("2016:10:01 00:00:00", "2016:10:01 01:00:00"))
    result = run("generateframes", dict(MODEL=model, FIRST=later[0], SECOND=later[1],
                                        OUTPUT_FOLDER=str(tmp_path / "other")))
    assert tif_time(result["OUTPUT_LAYERS"][-1]) == "2016:10:01 01:00:00"


def test_2_model_times_are_only_a_fallback_with_a_warning(pair, tmp_path):
    bare = copy_pair(pair, tmp_path / "bare")   # no time in metadata or names
    feedback = collecting_feedback()
    result = run("generateframes", dict(MODEL=pair["model"], FIRST=bare[0], SECOND=bare[1],
                                        OUTPUT_FOLDER=str(tmp_path / "frames")), feedback)
    assert tif_time(result["OUTPUT_LAYERS"][0]) == "2016:09:28 14:45:00"
    warning = "\n".join(feedback.warnings)
    assert "START_TIME and END_TIME" in warning and "fallback" in warning and "set START_TIME and END_TIME" in warning
    # one time given: the other is that time plus the model's interval
    result = run("generateframes", dict(MODEL=pair["model"], FIRST=bare[0], SECOND=bare[1],
                                        START_TIME="2020-01-01T06:00:00", OUTPUT_FOLDER=str(tmp_path / "f2")))
    assert [tif_time(p) for p in result["OUTPUT_LAYERS"]][::2] == ["2020:01:01 06:00:00", "2020:01:01 07:00:00"]


# ------------------------------------------------------------------------------- 3. zone-less times are UTC
def test_3_zoneless_times_are_utc_whatever_the_machine_zone(pair, tmp_path):
    frames = tmp_path / "frames"
    result = cli("generateframes", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"],
                                        START_TIME="2024-05-01T12:30:00", END_TIME="2024-05-01T13:30:00",
                                        OUTPUT_FOLDER=frames), env={"TZ": "Europe/Helsinki"})
    assert result.returncode == 0, output_of(result)
    assert tif_time(frames / "frame_000.tif") == "2024:05:01 12:30:00"
    assert tif_time(frames / "frame_002.tif") == "2024:05:01 13:30:00"
    # a zone given is honoured
    result = cli("generateframes", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"],
                                        START_TIME="2024-05-01T12:30:00+03:00", END_TIME="2024-05-01T13:30:00+03:00",
                                        OUTPUT_FOLDER=frames), env={"TZ": "Europe/Helsinki"})
    assert result.returncode == 0 and tif_time(frames / "frame_000.tif") == "2024:05:01 09:30:00"


def test_3_local_qdatetime_fields_are_read_as_utc_and_the_help_says_so(pair):
    from qgis.core import QgsApplication, QgsProcessingContext
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime, Qt
    from inbetween.processing_provider import params as P

    alg = QgsApplication.processingRegistry().algorithmById("inbetween:train")
    value = QDateTime(QDate(2024, 5, 1), QTime(12, 30), Qt.TimeSpec.LocalTime)
    got = P.optional_datetime(alg, {"START_TIME": value}, "START_TIME", QgsProcessingContext())
    assert got == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    for name in ("START_TIME", "END_TIME"):
        assert "UTC unless a zone is given" in alg.parameterDefinition(name).description()
    from inbetween.processing_provider.raster_io import InputError
    with pytest.raises(InputError, match="START_TIME: cannot read a date and time from 'noon'; write it as"):
        P.optional_datetime(alg, {"START_TIME": "noon"}, "START_TIME", QgsProcessingContext())


# --------------------------------------------------------------------------------- 4. damaged model files
def test_4_a_damaged_model_is_refused(pair, tmp_path):
    data = bytearray(Path(pair["model"]).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.inbetween"
    bad.write_bytes(bytes(data))
    before = snapshot(tmp_path)
    fails("generateframes", dict(MODEL=str(bad), FIRST=pair["first"], SECOND=pair["second"],
                                 OUTPUT_FOLDER=str(tmp_path / "frames")),
          "MODEL: ", "is damaged", "checksum", "intact copy or train again")
    assert snapshot(tmp_path) == before and not (tmp_path / "frames").exists()
    # a damaged header value (the times) is caught as well
    from model.modelfile import ModelFileError, load_model
    raw = Path(pair["model"]).read_bytes()
    edited = raw.replace(b"2016-09-28T14:45:00", b"2016-09-28T14:46:00", 1)
    assert edited != raw
    (tmp_path / "edited.inbetween").write_bytes(edited)
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(tmp_path / "edited.inbetween")


# -------------------------------------------------------------- 5. destinations checked before any work
def test_5_bad_destinations_fail_before_training(pair, tmp_path):
    before = snapshot(tmp_path, pair["folder"])
    cases = [
        (dict(OUTPUT_MODEL=str(tmp_path / "missing" / "m.inbetween")), ("OUTPUT_MODEL", "does not exist", "create it")),
        (dict(OUTPUT_MODEL=str(tmp_path)), ("OUTPUT_MODEL", "is a folder", "give a file name")),
        (dict(OUTPUT_MODEL="/sys/m.inbetween"), ("OUTPUT_MODEL", "cannot write in /sys", "choose a folder")),
        (dict(OUTPUT_MODEL=pair["first"]), ("OUTPUT_MODEL", "is FIRST", "choose another file name")),
        (dict(OUTPUT_MODEL=str(tmp_path / "m.inbetween"), OUTPUT_LOSS_PLOT=str(tmp_path / "loss.jpg")),
         ("OUTPUT_LOSS_PLOT must end in .png",)),
    ]
    for outputs, patterns in cases:
        feedback = collecting_feedback()
        fails("train", dict(FIRST=pair["first"], SECOND=pair["second"], **{**TRAIN, "ITERATIONS": 5000}, **outputs),
              *patterns, feedback=feedback)
        assert not any("Training" in i for i in feedback.infos)   # refused before the pair was even read
    a_file = tmp_path / "notafolder"
    a_file.write_text("mine")
    (tmp_path / "mydata.gpkg").write_text("a GeoPackage of the user's, never named as an output")
    before = snapshot(tmp_path, pair["folder"])
    for other in ("mydata.shp", "mydata.geojson", "mydata.csv"):   # never written as mydata.gpkg over theirs
        fails("exportfield", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"],
                                  OUTPUT=str(tmp_path / other)), "OUTPUT must be a GeoPackage", "mydata.gpkg")
    fails("generateframes", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"],
                                 OUTPUT_FOLDER=str(a_file)), "OUTPUT_FOLDER", "is a file", "give a folder")
    fails("exportfield", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"],
                              OUTPUT=str(tmp_path / "nowhere" / "f.gpkg")), "OUTPUT", "does not exist")
    fails("interpolate", dict(FIRST=pair["first"], SECOND=pair["second"], METHOD="linear",
                              OUTPUT_FOLDER="/sys/frames"), "OUTPUT_FOLDER", "cannot write in /sys")
    assert snapshot(tmp_path, pair["folder"]) == before and not leftovers(tmp_path)


def _file_size_limit(limit):
    def apply():   # a write beyond ``limit`` bytes fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_5_a_failed_write_says_what_failed_and_leaves_no_partial_file(pair, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = cli("train", dict(FIRST=pair["first"], SECOND=pair["second"], OUTPUT_MODEL=out / "m.inbetween",
                               OUTPUT_LOSS_PLOT="", **TRAIN), preexec_fn=_file_size_limit(100_000))
    assert result.returncode != 0
    message = output_of(result)
    assert f"Could not write the model file {out / 'm.inbetween'}: File too large; nothing was written." in message
    assert "Traceback" not in message and os.listdir(out) == []
    # frames: 160 px of noise make frames larger than the limit
    noise = np.random.default_rng(1).normal(size=(2, 160, 160)).astype(np.float32)
    a = write_geotiff(tmp_path / "a.tif", noise[0], when="2016:09:28 14:45:00")
    b = write_geotiff(tmp_path / "b.tif", noise[1], when="2016:09:28 15:45:00")
    result = cli("generateframes", dict(MODEL=pair["model"], FIRST=a, SECOND=b, OUTPUT_FOLDER=out / "frames"),
                 preexec_fn=_file_size_limit(60_000))
    assert result.returncode != 0
    message = output_of(result)
    assert f"Could not write the frames in {out / 'frames'}: " in message and "no partial frame was left" in message
    assert "Traceback" not in message and os.listdir(out) == []


# ------------------------------------------------------------------------------------ 6. wrong successes
@pytest.mark.parametrize("name, value, pattern", [
    ("ITERATIONS", "abc", "ITERATIONS must be a number; got 'abc'"),
    ("PATCH_SIZE", "abc", "PATCH_SIZE must be a number; got 'abc'"),
    ("BATCH_SIZE", "abc", "BATCH_SIZE must be a number"),
    ("STRIDE", "abc", "STRIDE must be a number"),
    ("STEPS", "2.5", "STEPS must be a whole number; got 2.5"),
])
def test_6_numbers_qgis_lets_through_are_refused(pair, tmp_path, name, value, pattern):
    result = cli("train", dict(FIRST=pair["first"], SECOND=pair["second"], **{**TRAIN, name: value},
                               OUTPUT_MODEL=tmp_path / "m.inbetween"))
    assert result.returncode != 0 and pattern in output_of(result), output_of(result)
    assert os.listdir(tmp_path) == []


def test_6_wrong_successes_are_errors_before_work(pair, tmp_path):
    before = snapshot(tmp_path, pair["folder"])
    gen = dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"])
    fails("generateframes", dict(gen, OUTPUT_FOLDER=str(tmp_path / "frames"),
                                 OUTPUT_ANIMATION=str(tmp_path / "x.mp4")), "OUTPUT_ANIMATION must end in .gif")
    fails("exportfield", dict(gen, SPACING=500, OUTPUT=str(tmp_path / "f.gpkg")),
          r"SPACING \(500 px\) leaves no sample on FIRST \(48 × 48 px\); use at most 95")
    fails("train", dict(FIRST=pair["first"], SECOND=pair["first"], OUTPUT_MODEL=str(tmp_path / "m.inbetween"), **TRAIN),
          "FIRST and SECOND are the same file", "taken at t0 and t1")
    empty = write_geotiff(tmp_path / "empty.tif", np.full((48, 48), -1.0, np.float32), nodata=-1.0,
                          when="2016:09:28 14:45:00")
    fails("train", dict(FIRST=empty, SECOND=pair["second"], OUTPUT_MODEL=str(tmp_path / "m.inbetween"), **TRAIN),
          "FIRST has no valid pixel", "nodata value")
    far = write_geotiff(tmp_path / "far.tif", np.ones((48, 48), np.float32), when="2016:09:28 15:15:00",
                        geotransform=(900000.0, 250.0, 0.0, 7000000.0, 0.0, -250.0))
    frames = tmp_path / "ev"
    run("interpolate", dict(FIRST=pair["first"], SECOND=pair["second"], STEPS=2, METHOD="linear",
                            OUTPUT_FOLDER=str(frames)))
    before = snapshot(tmp_path, pair["folder"])
    fails("evaluate", dict(GENERATED=str(frames), REFERENCE=[far], OUTPUT_TABLE=str(tmp_path / "s.csv")),
          "share no valid pixel", "REFERENCE covers")
    assert snapshot(tmp_path, pair["folder"]) == before and not leftovers(tmp_path)
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "f.gpkg").exists()


# ------------------------------------------------------------------------------------ 7. any model name
def test_7_a_model_is_judged_by_its_content_not_its_name(pair, tmp_path):
    for name in ("m.model", "m.pt", "m"):
        feedback = collecting_feedback()
        model = run("train", dict(FIRST=pair["first"], SECOND=pair["second"], OUTPUT_MODEL=str(tmp_path / name),
                                  OUTPUT_LOSS_PLOT="", **TRAIN), feedback)["OUTPUT_MODEL"]
        assert model == str(tmp_path / name)
        assert any("recognised by its content" in i for i in feedback.infos)
        result = run("generateframes", dict(MODEL=model, FIRST=pair["first"], SECOND=pair["second"],
                                            OUTPUT_FOLDER=str(tmp_path / f"frames-{name}")))
        assert len(result["OUTPUT_LAYERS"]) == 3
    fake = tmp_path / "fake.inbetween"
    fake.write_text("no model here")
    fails("generateframes", dict(MODEL=str(fake), FIRST=pair["first"], SECOND=pair["second"],
                                 OUTPUT_FOLDER=str(tmp_path / "x")), "MODEL: ", "not an In-between model file",
          "choose the file Train wrote")


# ----------------------------------------------------------------------------------- 8. clearer messages
def test_8_ranges_and_option_numbers(pair, tmp_path):
    result = cli("train", dict(FIRST=pair["first"], SECOND=pair["second"], **{**TRAIN, "STEPS": 5000},
                               OUTPUT_MODEL=tmp_path / "m.inbetween"))
    assert result.returncode != 0 and "STEPS must be between 1 and 1000; got 5000." in output_of(result)
    result = cli("train", dict(FIRST=pair["first"], SECOND=pair["second"], **TRAIN, DEVICE=9,
                               OUTPUT_MODEL=tmp_path / "m.inbetween"))
    assert result.returncode != 0
    assert "DEVICE must be one of auto, cpu, cuda (or their numbers 0 to 2); got '9'." in output_of(result)
    # the numeric form qgis_process help shows is accepted: DEVICE 1 = cpu, PRESET 0 = fast
    result = cli("train", dict(FIRST=pair["first"], SECOND=pair["second"], **TRAIN, DEVICE=1, PRESET=0,
                               OUTPUT_MODEL=tmp_path / "m.inbetween", OUTPUT_LOSS_PLOT=""))
    assert result.returncode == 0, output_of(result)
    from model.modelfile import read_header
    header = read_header(str(tmp_path / "m.inbetween"))
    assert header["preset"] == "fast" and header["training"]["device"] == "cpu"


def test_8_a_model_from_another_grid_says_what_differs(pair, tmp_path):
    coarse = copy_pair(pair, tmp_path / "coarse", when=("2016:09:28 14:45:00", "2016:09:28 15:45:00"),
                       geotransform=(500000.0, 2500.0, 0.0, 7000000.0, 0.0, -2500.0))
    feedback = collecting_feedback()
    run("generateframes", dict(MODEL=pair["model"], FIRST=coarse[0], SECOND=coarse[1],
                               OUTPUT_FOLDER=str(tmp_path / "f")), feedback)
    warning = "\n".join(feedback.warnings)
    assert "FIRST's pixels are 2500 map units wide and the model's were 250 (10×)" in warning
    assert "use a model trained at this resolution" in warning
    other = copy_pair(pair, tmp_path / "other", when=("2016:09:28 14:45:00", "2016:09:28 15:45:00"), epsg=3857)
    feedback = collecting_feedback()
    run("generateframes", dict(MODEL=pair["model"], FIRST=other[0], SECOND=other[1],
                               OUTPUT_FOLDER=str(tmp_path / "g")), feedback)
    assert any("FIRST's CRS (WGS 84 / Pseudo-Mercator) differs from the model's (ETRS89 / TM35FIN(E,N))" in w
               for w in feedback.warnings), feedback.warnings


# ------------------------------------------------------------------------------- 9. leftovers on signals
def test_9_sigterm_during_generateframes_leaves_nothing(pair, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    first, second, _ = translation_geotiffs(big, size=900, steps=2)
    out = tmp_path / "frames"
    log = tmp_path.parent / f"{tmp_path.name}-sigterm.log"
    with open(log, "w") as sink:
        proc = cli("generateframes", dict(MODEL=pair["model"], FIRST=first, SECOND=second, OUTPUT_FOLDER=out),
                   popen=sink)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not leftovers(tmp_path):
            time.sleep(0.05)
        assert proc.poll() is None, "generateframes ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    text = log.read_text()
    assert proc.returncode != 0
    assert "Stopped by SIGTERM; the partial files of this run were removed." in text, text[-2000:]
    assert not leftovers(tmp_path) and not out.exists()


def test_9_a_killed_runs_leftovers_are_cleaned_on_the_next_run(pair, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    dead = subprocess.Popen(["true"])   # a process id that is no longer running
    dead.wait()
    stale = out / f".inbetween-frames-{dead.pid}-x1"
    stale.mkdir()
    (stale / "frame_000.tif").write_bytes(b"partial")
    alive = out / f".inbetween-frames-{os.getpid()}-x2"   # a run still going on: not touched
    alive.mkdir()
    feedback = collecting_feedback()
    run("generateframes", dict(MODEL=pair["model"], FIRST=pair["first"], SECOND=pair["second"],
                               OUTPUT_FOLDER=str(out)), feedback)
    assert not stale.exists() and alive.is_dir()
    assert any(f"Removed {stale.name}, the partial frames of an interrupted run." in i for i in feedback.infos)
    alive.rmdir()


# --------------------------------------------------------------------------------------------- BANDS
def test_bands_choose_the_bands_of_a_multiband_pair(provider, tmp_path):
    first, second, _ = translation_geotiffs(tmp_path, size=48, steps=2, bands=3)
    model = str(tmp_path / "b2.inbetween")
    run("train", dict(FIRST=first, SECOND=second, BANDS=[2], OUTPUT_MODEL=model, OUTPUT_LOSS_PLOT="", **TRAIN))
    from model.modelfile import read_header
    header = read_header(model)
    assert header["bands"] == 1 and header["extra"]["band_indices"] == [2]
    feedback = collecting_feedback()
    result = run("generateframes", dict(MODEL=model, FIRST=first, SECOND=second,
                                        OUTPUT_FOLDER=str(tmp_path / "frames")), feedback)
    ds = gdal.Open(result["OUTPUT_LAYERS"][0])
    assert ds.RasterCount == 1
    src = gdal.Open(first)   # kept alive while its band is read (GDAL 3.6 bindings)
    np.testing.assert_array_equal(ds.ReadAsArray(), src.GetRasterBand(2).ReadAsArray())
    assert any("using bands 2, the ones the model was trained on" in i for i in feedback.infos)
    fails("train", dict(FIRST=first, SECOND=second, BANDS=[5], OUTPUT_MODEL=str(tmp_path / "x.inbetween"), **TRAIN),
          "BANDS: FIRST has 3 band", "band 5 does not exist", "choose bands 1 to 3")
    fails("generateframes", dict(MODEL=model, FIRST=first, SECOND=second, BANDS=[1, 2],
                                 OUTPUT_FOLDER=str(tmp_path / "f2")), "trained on 1 band", "with BANDS")
