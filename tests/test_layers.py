"""Frame layers with temporal ranges, the styled field layer and the .qgz project, in real QGIS."""
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest


from osgeo import gdal, osr

from inbetween.processing_provider import field_io, raster_io

UTC = timezone.utc
N = 4


def make_frames(tmp_path, bands=1):
    s = osr.SpatialReference()
    s.ImportFromEPSG(3067)
    grid = raster_io.Grid(crs_wkt=s.ExportToWkt(), geotransform=(300000.0, 250.0, 0, 7000000.0, 0, -250.0),
                          width=48, height=40, nodata=[255] * bands, gdal_dtype=gdal.GDT_Byte,
                          band_names=[f"b{i}" for i in range(bands)], georeferenced=True,
                          color_interps=[gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand][:bands]
                          if bands == 3 else [gdal.GCI_GrayIndex] * bands)
    yy, xx = np.mgrid[0:40, 0:48].astype(np.float32)
    frames = np.stack([np.stack([20 + xx + 10 * j + 5 * b for b in range(bands)]) for j in range(N + 1)])
    frames[:, :, 0, 0] = np.nan
    t0 = datetime(2016, 9, 28, 14, 45, tzinfo=UTC)
    times = [t0 + j * timedelta(seconds=75) for j in range(N + 1)]
    paths = raster_io.write_frames(frames, grid, times, tmp_path / f"frames{bands}")
    return grid, paths, times


def qdt(t):
    from inbetween.plugin.layers import to_qdatetime
    return to_qdatetime(t)


def test_frame_layers_temporal_and_shared_style(tmp_path, qgis_app):
    from qgis.core import QgsProject, QgsRasterLayerTemporalProperties, QgsSingleBandGrayRenderer
    from inbetween.plugin import layers as L
    _grid, paths, times = make_frames(tmp_path)
    project = QgsProject()
    lyrs = L.frame_layers(paths, times, "frames", project=project)
    assert len(lyrs) == N + 1
    for j, layer in enumerate(lyrs):
        props = layer.temporalProperties()
        assert props.isActive()
        assert props.mode() == QgsRasterLayerTemporalProperties.ModeFixedTemporalRange
        rng = props.fixedTemporalRange()
        assert rng.begin() == qdt(times[j]) and not rng.includeEnd()
        end = times[j + 1] if j < N else times[N] + timedelta(seconds=75)
        assert rng.end() == qdt(end)
        r = layer.renderer()
        assert isinstance(r, QgsSingleBandGrayRenderer)
        ce = r.contrastEnhancement()
        assert (ce.minimumValue(), ce.maximumValue()) == (20.0, 20 + 47 + 10 * N)  # shared over frames
        assert props.isVisibleInTemporalRange(L.QgsDateTimeRange(qdt(times[j]), qdt(times[j] + timedelta(seconds=1))))
    group = project.layerTreeRoot().findGroup("frames")
    assert [n.layerId() for n in group.findLayers()] == [layer.id() for layer in lyrs]
    assert lyrs[0].crs().authid() == "EPSG:3067"
    # pseudo-colour option
    from qgis.core import QgsSingleBandPseudoColorRenderer
    more = L.frame_layers(paths, times, "frames", style="reflectivity")
    assert isinstance(more[0].renderer(), QgsSingleBandPseudoColorRenderer)


def test_rgb_frames_and_post_processor_helpers(tmp_path, qgis_app):
    from qgis.core import QgsMultiBandColorRenderer, QgsProject, QgsRasterLayer
    from inbetween.plugin import layers as L
    _grid, paths, times = make_frames(tmp_path, bands=3)
    lyrs = L.frame_layers(paths, times, "rgb")
    assert isinstance(lyrs[0].renderer(), QgsMultiBandColorRenderer)
    assert lyrs[0].renderer().blueContrastEnhancement().maximumValue() == 20 + 47 + 10 * N + 10
    # the pieces the Processing post-processor uses on a layer QGIS already added
    project = QgsProject()
    layer = QgsRasterLayer(paths[1], "f1", "gdal")
    project.addMapLayer(layer)
    rng = L.shared_value_range(paths)
    L.style_frame(layer, rng)
    L.set_frame_time(layer, times[1], times[2])
    L.move_to_group(layer, project, "grp")
    assert project.layerTreeRoot().findGroup("grp").findLayer(layer.id()) is not None
    assert len(project.layerTreeRoot().findLayers()) == 1  # moved, not duplicated
    assert project.mapLayer(layer.id()) is layer  # and still in the project
    assert layer.temporalProperties().fixedTemporalRange().begin() == qdt(times[1])


def make_field(tmp_path, grid, times):
    f = np.zeros((N, 2, grid.height, grid.width), np.float32)
    f[:, 0], f[:, 1] = 1.0, -1.0  # north-east
    f[1] *= 2
    rows = field_io.field_rows(f, grid, times, 8)
    gpkg = field_io.write_field_gpkg(rows, grid, tmp_path / "field.gpkg")
    nc = field_io.write_field_netcdf(f, grid, times, tmp_path / "field.nc")
    return gpkg, nc


def test_style_field_layer(tmp_path, qgis_app):
    from qgis.core import (QgsGraduatedSymbolRenderer, QgsSymbolLayer, QgsVectorLayer,
                           QgsVectorLayerTemporalProperties, QgsSimpleMarkerSymbolLayerBase)
    from inbetween.plugin import layers as L
    grid, _paths, times = make_frames(tmp_path)
    gpkg, _ = make_field(tmp_path, grid, times)
    layer = QgsVectorLayer(gpkg, "field", "ogr")
    assert layer.isValid()
    L.style_field_layer(layer)
    r = layer.renderer()
    assert isinstance(r, QgsGraduatedSymbolRenderer) and r.classAttribute() == "speed"
    top = max(f["speed"] for f in layer.getFeatures())
    ranges = r.ranges()
    assert ranges[0].lowerValue() == 0 and ranges[-1].upperValue() >= top > ranges[-1].lowerValue()
    assert all(rg.label().endswith(" m/s") for rg in ranges)  # the legend speaks m/s
    sizes = [rg.symbol().size() for rg in ranges]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]  # faster: bigger
    for rg in ranges:
        sl = rg.symbol().symbolLayer(0)
        assert sl.shape() == QgsSimpleMarkerSymbolLayerBase.Arrow
        angle = sl.dataDefinedProperties().property(QgsSymbolLayer.PropertyAngle)
        assert angle.isActive() and angle.field() == "direction"
    speed = layer.fields().indexOf("speed")
    assert layer.attributeDisplayName(speed) == "speed (m/s)"
    assert layer.editorWidgetSetup(speed).config()["Precision"] >= 1
    props = layer.temporalProperties()
    assert props.isActive()
    assert props.mode() == QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromExpressions
    assert props.startField() == "time" and '"time"' in props.startExpression()
    assert props.fixedDuration() == pytest.approx(75)
    # the filter picks exactly one step's features per Temporal Controller frame, also for half steps
    from qgis.core import QgsFeatureRequest, QgsVectorLayerTemporalContext
    ctx = QgsVectorLayerTemporalContext()
    ctx.setLayer(layer)
    for k in range(N):
        for a, b in ((0, 75), (0, 37.5), (37.5, 75)):
            rng = L.QgsDateTimeRange(qdt(times[k] + timedelta(seconds=a)), qdt(times[k] + timedelta(seconds=b)),
                                     True, False)
            expr = props.createFilterString(ctx, rng)
            steps = {f["step"] for f in layer.getFeatures(QgsFeatureRequest().setFilterExpression(expr))}
            assert steps == {k}, (k, a, b, expr)


def test_write_project_reopens(tmp_path, qgis_app):
    from qgis.core import QgsProject, QgsRasterLayerTemporalProperties, QgsUnitTypes
    from inbetween.plugin import layers as L
    grid, paths, times = make_frames(tmp_path)
    gpkg, nc = make_field(tmp_path, grid, times)
    out = str(tmp_path / "proj" / "inbetween.qgz")
    assert L.write_project(out, paths, times, field_path=gpkg, netcdf_path=nc) == out
    # the frames carry their statistics: loading them leaves no .aux.xml beside them
    assert not [f for f in os.listdir(os.path.dirname(paths[0])) if f.endswith(".aux.xml")]
    assert os.listdir(tmp_path / "proj") == ["inbetween.qgz"]
    import zipfile
    assert "inbetween.qgs" in zipfile.ZipFile(out).namelist()
    p = QgsProject()
    assert p.read(out)
    group = p.layerTreeRoot().findGroup(L.FRAMES_GROUP)
    assert group is not None and len(group.findLayers()) == N + 1
    for j, node in enumerate(group.findLayers()):
        layer = node.layer()
        assert layer.isValid()
        props = layer.temporalProperties()
        assert props.isActive() and props.mode() == QgsRasterLayerTemporalProperties.ModeFixedTemporalRange
        # saved as [t_j + 1 s, t_j+1 - 1 s]: QGIS 3.22 keeps neither include flags nor milliseconds
        assert props.fixedTemporalRange().begin() == qdt(times[j]).addSecs(1)
        assert props.fixedTemporalRange().end() == qdt(times[j] + timedelta(seconds=75)).addSecs(-1)
    field = p.mapLayersByName(L.FIELD_LAYER_NAME)[0]
    fp = field.temporalProperties()
    assert fp.isActive() and fp.startField() == "time" and fp.endExpression().startswith('to_datetime("time")')
    assert field.renderer().type() == "graduatedSymbol"
    root = p.layerTreeRoot()
    assert root.children()[0].layerId() == field.id()  # the field above, not inside, the frames group
    assert not any(node.isExpanded() for node in group.findLayers())  # N+1 identical legends: collapsed
    assert [node.layer().name() for node in group.findLayers()][:2] == ["frame_000 2016-09-28 14:45 UTC",
                                                                         "frame_001 2016-09-28 14:46:15 UTC"]
    # opened in the desktop, the Temporal Controller plays frame by frame (QGIS's own project entries)
    from qgis.core import QgsTemporalNavigationObject
    assert p.readNumEntry("TemporalControllerWidget", "/NavigationMode")[0] == QgsTemporalNavigationObject.Animated
    assert p.readEntry("TemporalControllerWidget", "/StartDateTime")[0].startswith("2016-09-28T14:45:00")
    assert p.timeSettings().timeStep() == 75 and p.timeSettings().timeStepUnit() == QgsUnitTypes.TemporalSeconds
    mesh = p.mapLayersByName(L.FIELD_LAYER_NAME + " (mesh)")[0]
    assert mesh.isValid() and mesh.rendererSettings().activeVectorDatasetGroup() >= 0
    ts = p.timeSettings()
    assert ts.temporalRange().begin() == qdt(times[0])
    assert ts.temporalRange().end() == qdt(times[N] + timedelta(seconds=75))
    assert ts.timeStep() == 75 and ts.timeStepUnit() == QgsUnitTypes.TemporalSeconds
    assert p.crs().authid() == "EPSG:3067"
    # The Temporal Controller stepping by Δt over the project range visits every frame once.
    from qgis.core import QgsInterval, QgsTemporalNavigationObject
    nav = QgsTemporalNavigationObject()
    nav.setTemporalExtents(ts.temporalRange())
    nav.setFrameDuration(QgsInterval(ts.timeStep()))
    assert nav.totalFrameCount() == N + 1
    lyrs = [n.layer() for n in group.findLayers()]
    for k in range(N + 1):
        rng = nav.dateTimeRangeForFrameNumber(k)
        visible = [j for j, lyr in enumerate(lyrs) if lyr.temporalProperties().isVisibleInTemporalRange(rng)]
        assert visible == [k]
    nav.setFrameDuration(QgsInterval(ts.timeStep() / 3))  # finer controller steps: still one frame each
    for k in range(nav.totalFrameCount() - 1):
        rng = nav.dateTimeRangeForFrameNumber(k)
        visible = [j for j, lyr in enumerate(lyrs) if lyr.temporalProperties().isVisibleInTemporalRange(rng)]
        assert visible == [k // 3], (k, rng)
    p.clear()


def test_write_project_without_field_and_failure(tmp_path, qgis_app):
    from inbetween.plugin import layers as L
    _grid, paths, times = make_frames(tmp_path)
    out = L.write_project(str(tmp_path / "only_frames"), paths, times)
    assert out.endswith(".qgz") and os.path.exists(out)
    with pytest.raises(ValueError):
        L.write_project(str(tmp_path / "bad.qgz"), paths, times, field_path=str(tmp_path / "missing.gpkg"))
    assert not [f for f in os.listdir(tmp_path) if f.startswith("bad")]
    # a .qgs: nothing else beside it (QGIS backs up an existing file as NAME~) and the umask's permissions
    qgs_dir = tmp_path / "qgs"
    qgs_dir.mkdir()
    umask = os.umask(0o022)
    try:
        out = L.write_project(str(qgs_dir / "p.qgs"), paths, times)
    finally:
        os.umask(umask)
    assert os.listdir(qgs_dir) == ["p.qgs"] and (os.stat(out).st_mode & 0o777) == 0o644


def test_project_for_rasters_without_georeference(tmp_path, qgis_app):
    """Sea-ice-like PNG pair without CRS/geotransform: frames, field and project in pixel units."""
    from qgis.core import QgsProject
    from inbetween.plugin import layers as L
    from inbetween.processing_provider import times as T

    def png(name, shift):
        yy, xx = np.mgrid[0:48, 0:64].astype(np.float32)
        g = (100 + 80 * np.exp(-((xx - 20 - shift) ** 2 + (yy - 24) ** 2) / 50)).astype(np.uint8)
        mem = gdal.GetDriverByName("MEM").Create("", 64, 48, 4, gdal.GDT_Byte)
        for i in range(3):
            mem.GetRasterBand(i + 1).WriteArray(g)
        mem.GetRasterBand(4).WriteArray(np.full((48, 64), 255, np.uint8))
        mem.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
        path = str(tmp_path / name)
        gdal.GetDriverByName("PNG").CreateCopy(path, mem)
        return path

    a = png("Sentinel1_HH_Sigma0_2020-03-19T16_01Z.png", 0)
    b = png("Sentinel1_HH_Sigma0_2020-03-20T15_54Z.png", 4)
    pair = raster_io.read_pair(a, b)
    t0, t1 = T.resolve_times(None, None, a, b)
    ts = T.frame_times(t0, t1, 2)
    frames = np.stack([pair.x0, 0.5 * (pair.x0 + pair.x1), pair.x1])
    paths = raster_io.write_frames(frames, pair.grid, ts, tmp_path / "frames")
    f = np.zeros((2, 2, 48, 64), np.float32)
    f[:, 0] = 2.0  # 2 px to the right per step
    rows = field_io.field_rows(f, pair.grid, ts, 8)
    assert rows[0]["u"] == pytest.approx(2.0 / (t1 - t0).total_seconds() * 2)
    gpkg = field_io.write_field_gpkg(rows, pair.grid, tmp_path / "field.gpkg")
    nc = field_io.write_field_netcdf(f, pair.grid, ts, tmp_path / "field.nc")
    out = L.write_project(tmp_path / "seaice.qgz", paths, ts, field_path=gpkg, netcdf_path=nc)
    p = QgsProject()
    assert p.read(out)
    frame0 = p.layerTreeRoot().findGroup(L.FRAMES_GROUP).findLayers()[0].layer()
    field = p.mapLayersByName(L.FIELD_LAYER_NAME)[0]
    assert frame0.isValid() and field.isValid() and field.featureCount() == len(rows)
    # the arrows lie over the frames: QGIS shows a raster without georeference at y = -row
    assert frame0.extent().contains(field.extent())
    p.clear()


def test_styles_inside_the_files(tmp_path, qgis_app):
    from qgis.core import QgsRasterLayer, QgsSymbolLayer, QgsVectorLayer
    from inbetween.plugin import layers as L
    grid, paths, times = make_frames(tmp_path)
    gpkg, _ = make_field(tmp_path, grid, times)
    assert L.embed_field_style(gpkg)
    reopened = QgsVectorLayer(gpkg, "f", "ogr")
    assert reopened.renderer().type() == "graduatedSymbol"
    ranges = reopened.renderer().ranges()  # keep the ranges alive while their symbols are used
    sl = ranges[0].symbol().symbolLayer(0)
    assert sl.dataDefinedProperties().property(QgsSymbolLayer.PropertyAngle).field() == "direction"
    assert reopened.attributeDisplayName(reopened.fields().indexOf("u")).endswith("(m/s)")
    qmls = L.write_frame_styles(paths, times)
    assert [os.path.splitext(q)[0] for q in qmls] == [os.path.splitext(p)[0] for p in paths]
    r = QgsRasterLayer(paths[2], "f", "gdal")  # default style picked up from frame_002.qml
    ce = r.renderer().contrastEnhancement()
    assert (ce.minimumValue(), ce.maximumValue()) == (20.0, 20 + 47 + 10 * N)
    # rewriting frames drops their now stale styles; the frames not rewritten keep theirs
    raster_io.write_frames(np.zeros((2, 1, 40, 48), np.float32), grid, times[:2], os.path.dirname(paths[0]))
    left = sorted(os.listdir(os.path.dirname(paths[0])))
    assert "frame_000.qml" not in left and "frame_001.qml" not in left and "frame_002.qml" in left
    assert [os.path.basename(p) for p in paths] == [f for f in left if f.endswith(".tif")]
