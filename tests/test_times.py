"""Times from parameters, metadata and file names."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from helpers import SHARED_DATA as DATA

from osgeo import gdal

from inbetween.processing_provider import times
from inbetween.processing_provider.raster_io import InputError

UTC = timezone.utc


def tif(path, metadata=None, band_metadata=None, domain=""):
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 4, 4, 1, gdal.GDT_Byte)
    ds.GetRasterBand(1).WriteArray(np.arange(16, dtype=np.uint8).reshape(4, 4))
    for k, v in (metadata or {}).items():
        ds.SetMetadataItem(k, v, domain)
    for k, v in (band_metadata or {}).items():
        ds.GetRasterBand(1).SetMetadataItem(k, v)
    ds = None
    return str(path)


@pytest.mark.parametrize("key,value,expected", [
    ("TIFFTAG_DATETIME", "2020:03:19 16:01:00", datetime(2020, 3, 19, 16, 1, tzinfo=UTC)),
    ("ACQUISITION_DATETIME", "2020-03-19T16:01:30.250Z", datetime(2020, 3, 19, 16, 1, 30, 250000, tzinfo=UTC)),
    ("ACQUISITION_START_TIME", "2020-03-19T18:01:00+02:00", datetime(2020, 3, 19, 16, 1, tzinfo=UTC)),
    ("DATETIME", "2020-03-19 16:01", datetime(2020, 3, 19, 16, 1, tzinfo=UTC)),
    ("Observation time", "201609281445", datetime(2016, 9, 28, 14, 45, tzinfo=UTC)),
])
def test_metadata_sources(tmp_path, key, value, expected):
    path = tif(tmp_path / "x.tif", {key: value})
    assert times.read_time(path) == expected


def test_band_metadata_and_other_domain(tmp_path):
    p = tif(tmp_path / "b.tif", band_metadata={"ACQUISITION_DATETIME": "2021-01-02T03:04:05Z"})
    assert times.read_time(p) == datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)
    p = tif(tmp_path / "d.tif", {"SENSING_TIME": "2021-01-02T03:04:05Z"}, domain="IMAGERY")
    assert times.read_time(p) == datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_precise_time_preferred_over_tifftag(tmp_path):
    p = tif(tmp_path / "x.tif", {"TIFFTAG_DATETIME": "2020:03:19 16:01:00",
                                  "ACQUISITION_DATETIME": "2020-03-19T16:01:00.5Z"})
    assert times.read_time(p) == datetime(2020, 3, 19, 16, 1, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize("name,expected", [
    ("Sentinel1_HH_Sigma0_2020-03-19T16_01Z.png", datetime(2020, 3, 19, 16, 1, tzinfo=UTC)),
    ("201609281445_FINUTM.tif", datetime(2016, 9, 28, 14, 45, tzinfo=UTC)),
    ("S2A_MSIL1C_20200319T101031_N0209.tif", datetime(2020, 3, 19, 10, 10, 31, tzinfo=UTC)),
    ("radar_2019-07-01_12-30-15.tif", datetime(2019, 7, 1, 12, 30, 15, tzinfo=UTC)),
    ("scene_20190701.tif", datetime(2019, 7, 1, tzinfo=UTC)),
])
def test_file_name_stamps(tmp_path, name, expected):
    path = tif(tmp_path / name)
    assert times.read_time(path) == expected
    assert times.read_time(path, with_source=True)[1] == "file name"


def test_no_time(tmp_path):
    assert times.read_time(tif(tmp_path / "plain.tif")) is None
    assert times.parse_time("band 1") is None
    assert times.parse_time("2020-13-45") is None


@pytest.mark.realdata
def test_fmi_real_file():
    d = DATA / "fmi-radar-2016-09-28"
    if not d.exists():
        pytest.skip("../shared/data is absent")
    t, src = times.read_time(d / "201609281445_FINUTM.tif", with_source=True)
    assert t == datetime(2016, 9, 28, 14, 45, tzinfo=UTC)
    assert "Observation time" in src
    t0, t1 = times.resolve_times(None, None, d / "201609281445_FINUTM.tif", d / "201609281500_FINUTM.tif")
    assert t1 - t0 == timedelta(minutes=15)


def test_resolve_times_parameters_win(tmp_path):
    from qgis.PyQt.QtCore import QDateTime, Qt, QDate, QTime
    a = tif(tmp_path / "a_2020-01-01T00_00Z.tif")
    b = tif(tmp_path / "b_2020-01-01T01_00Z.tif")
    assert times.resolve_times(None, None, a, b) == (datetime(2020, 1, 1, tzinfo=UTC),
                                                      datetime(2020, 1, 1, 1, tzinfo=UTC))
    start = QDateTime(QDate(2020, 1, 1), QTime(0, 30), Qt.TimeSpec.UTC)
    sources = []
    t0, t1 = times.resolve_times(start, QDateTime(), a, b, sources=sources)
    assert t0 == datetime(2020, 1, 1, 0, 30, tzinfo=UTC) and t1 == datetime(2020, 1, 1, 1, tzinfo=UTC)
    assert "START_TIME parameter" in sources[0] and "file name" in sources[1]
    t0, _ = times.resolve_times(datetime(2020, 1, 1, 0, 10), None, a, b)
    assert t0.tzinfo is not None


def test_resolve_times_errors(tmp_path):
    a, b = tif(tmp_path / "a.tif"), tif(tmp_path / "b.tif")
    with pytest.raises(InputError, match="START_TIME is empty.*FIRST"):
        times.resolve_times(None, datetime(2020, 1, 1, tzinfo=UTC), a, b)
    with pytest.raises(InputError, match="END_TIME is empty.*SECOND"):
        times.resolve_times(datetime(2020, 1, 1, tzinfo=UTC), None, a, b)
    with pytest.raises(InputError, match="END_TIME .* must be after START_TIME"):
        times.resolve_times(datetime(2020, 1, 2, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC), a, b)
    with pytest.raises(InputError, match="must be after"):
        times.resolve_times(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC), a, b)
    # the pair given the wrong way round, times from their metadata: the message names the files, not parameters
    late = tif(tmp_path / "late.tif", {"TIFFTAG_DATETIME": "2020:01:01 01:00:00"})
    early = tif(tmp_path / "early.tif", {"TIFFTAG_DATETIME": "2020:01:01 00:00:00"})
    with pytest.raises(InputError, match=r"SECOND's time \(2020-01-01T00:00:00\+00:00, from SECOND's metadata.*\) is not "
                                         r"after FIRST's .*swap FIRST and SECOND, or set START_TIME and END_TIME"):
        times.resolve_times(None, None, late, early)


def test_frame_times():
    t0, t1 = datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, 0, 10, tzinfo=UTC)
    ts = times.frame_times(t0, t1, 3)
    assert len(ts) == 4 and ts[0] == t0 and ts[-1] == t1
    assert ts[1] == t0 + timedelta(seconds=200)
    with pytest.raises(InputError):
        times.frame_times(t0, t1, 0)
    assert times.tiff_datetime(ts[1]) == "2020:01:01 00:03:20"


def test_unreadable_file_falls_back_to_name(tmp_path):
    bad = tmp_path / "radar_2019-07-01T12_30Z.tif"
    bad.write_bytes(b"garbage")
    assert times.read_time(bad) == datetime(2019, 7, 1, 12, 30, tzinfo=UTC)
    assert times.read_time(tmp_path / "missing.tif") is None
    with pytest.raises(InputError, match="START_TIME is empty"):
        times.resolve_times(None, None, tmp_path / "missing.tif", bad)
