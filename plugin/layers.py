"""Layer styling and temporal set-up in QGIS (works without iface, e.g. under a plain QgsApplication).

Frames: one raster layer per frame (QGIS 3.22 has no per-band time), same symbology across frames
(a reflectivity ramp for dBZ data, else a stretch over the min/max of all frames), each with a fixed
temporal range [t_j, t_j+1), in one layer-tree group. Field: point layer with arrow markers (angle from
"direction"), graduated by "speed" in size and colour with a legend in m/s, time from "time". The same
functions style the layers loaded in the desktop, the styles written beside the files and the projects
the plugin writes, so all three look alike; ``play`` sets the Temporal Controller up for the frames.
"""
import math
import os
import tempfile
from datetime import datetime, timedelta, timezone

from osgeo import gdal
from qgis.core import (
    QgsContrastEnhancement, QgsDateTimeRange, QgsMarkerSymbol,
    QgsMeshLayer, QgsMultiBandColorRenderer, QgsProject, QgsProperty, QgsRasterLayer,
    QgsRasterLayerTemporalProperties, QgsSimpleMarkerSymbolLayer, QgsSimpleMarkerSymbolLayerBase,
    QgsSingleBandGrayRenderer, QgsSymbolLayer, QgsUnitTypes, QgsVectorLayer,
    QgsVectorLayerTemporalProperties,
)
from qgis.PyQt.QtCore import QDate, QDateTime, Qt, QTime
from qgis.PyQt.QtGui import QColor

FRAMES_GROUP = "In-between frames"
FIELD_LAYER_NAME = "advection field"


# ------------------------------------------------------------------------------------------ time
def to_qdatetime(t):
    """datetime (naive = UTC) or QDateTime -> QDateTime in UTC."""
    if isinstance(t, QDateTime):
        return t.toUTC()
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return QDateTime(QDate(t.year, t.month, t.day),
                     QTime(t.hour, t.minute, t.second, t.microsecond // 1000), Qt.TimeSpec.UTC)


def to_datetime(q):
    """QDateTime -> tz-aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=q.toMSecsSinceEpoch())


def frame_ranges(times):
    """(start, end) for each of N+1 frame times: [t_j, t_j+1), the last one [t_N, t_N + Δt)."""
    times = list(times)
    if len(times) == 1:
        return [(times[0], times[0] + timedelta(seconds=1))]
    out = []
    for j, t in enumerate(times):
        end = times[j + 1] if j + 1 < len(times) else t + (t - times[j - 1])
        out.append((t, end))
    return out


def frame_layer_name(path, t):
    """The layer name of a frame, the same in the desktop and in written projects:
    "frame_005 2016-09-28 15:15 UTC" (seconds only when there are some)."""
    t = t.astimezone(timezone.utc) if t.tzinfo else t
    when = f"{t:%Y-%m-%d %H:%M:%S}" if t.second or t.microsecond else f"{t:%Y-%m-%d %H:%M}"
    return f"{os.path.splitext(os.path.basename(str(path)))[0]} {when} UTC"


# The Temporal Controller panel of QGIS 3.22 reads these project entries when a project is opened.
_CONTROLLER_SCOPE = "TemporalControllerWidget"


def play(project, begin, end, step_seconds, fps=4, extend=False, canvases=True):
    """Set the Temporal Controller up to step through [begin, end) by ``step_seconds``, animated, so the
    first press of Play shows one frame per step: in ``project``'s time settings and controller entries
    (saved with it and applied by QGIS when it is opened) and on the navigation object of every map
    canvas of this application (the desktop's main canvas; none under qgis_process) unless ``canvases`` is
    False. ``extend``: keep a range already set up and only widen it (a field added after its frames).
    Returns the canvases set up."""
    from qgis.core import QgsInterval, QgsTemporalNavigationObject
    from qgis.gui import QgsMapCanvas
    from qgis.PyQt.QtWidgets import QApplication

    begin, end = to_qdatetime(begin), to_qdatetime(end)
    ts = project.timeSettings()
    if extend:
        old = ts.temporalRange()
        if old.begin().isValid() and old.end().isValid():
            begin, end = min(begin, old.begin()), max(end, old.end())
    ts.setTemporalRange(QgsDateTimeRange(begin, end, True, False))
    ts.setTimeStepUnit(QgsUnitTypes.TemporalSeconds)
    ts.setTimeStep(float(step_seconds))
    ts.setFramesPerSecond(fps)
    project.writeEntry(_CONTROLLER_SCOPE, "/NavigationMode", int(QgsTemporalNavigationObject.Animated))
    project.writeEntry(_CONTROLLER_SCOPE, "/StartDateTime", begin.toString(Qt.DateFormat.ISODateWithMs))
    project.writeEntry(_CONTROLLER_SCOPE, "/EndDateTime", end.toString(Qt.DateFormat.ISODateWithMs))
    app = QApplication.instance()
    if not canvases or not isinstance(app, QApplication):
        return []
    canvases = [w for w in app.allWidgets() if isinstance(w, QgsMapCanvas)]
    for canvas in canvases:
        nav = canvas.temporalController()
        if not isinstance(nav, QgsTemporalNavigationObject):
            continue
        nav.setNavigationMode(QgsTemporalNavigationObject.Animated)
        nav.setTemporalExtents(QgsDateTimeRange(begin, end, True, False))
        nav.setFrameDuration(QgsInterval(float(step_seconds)))
        nav.setFramesPerSecond(fps)
        nav.setCurrentFrameNumber(0)
    return canvases


def play_frames(project, times, fps=4, canvases=True):
    """``play`` over the frames at ``times``: from t_0 to t_N + Δt by Δt (N + 1 controller frames)."""
    ranges = frame_ranges(times)
    return play(project, ranges[0][0], ranges[-1][1], (ranges[0][1] - ranges[0][0]).total_seconds(), fps,
                canvases=canvases)


def set_frame_time(layer, start, end, persist_safe=False):
    """Make a raster layer temporal with the fixed range from start to end (end excluded).

    The beginning is stored as excluded too: QGIS 3.22's QgsTemporalRange.overlaps() ignores the
    Temporal Controller frame's excluded end, so with [t_j, t_j+1) frame j would also show during the
    controller frame [t_j-1, t_j) and two frames would be drawn at once. (t_j, t_j+1) shows exactly
    frame j during [t_j, t_j+1) for any controller step (checked in tests/test_layers.py).

    QGIS 3.22 also does not save these flags in project files (a reloaded range is [begin, end],
    both included) and saves whole seconds only. With ``persist_safe`` the range is stored as
    [floor(t_j) + 1 s, floor(t_j+1) - 1 s], both included, which selects the same frame per
    controller frame before and after saving; ``write_project`` uses it (frames of 3 s or more).
    """
    begin, finish = to_qdatetime(start), to_qdatetime(end)
    if persist_safe and begin.secsTo(finish) >= 3:
        b = begin.addMSecs(-begin.time().msec()).addSecs(1)
        e = finish.addMSecs(-finish.time().msec()).addSecs(-1)
        rng = QgsDateTimeRange(b, e, True, True)
    else:
        rng = QgsDateTimeRange(begin, finish, False, False)
    props = layer.temporalProperties()
    props.setMode(QgsRasterLayerTemporalProperties.ModeFixedTemporalRange)
    props.setFixedTemporalRange(rng)
    props.setIsActive(True)
    return layer


# ----------------------------------------------------------------------------------- symbology
def shared_value_range(paths, max_bands=3):
    """Per band (up to ``max_bands``) the (min, max) over all frame files, ignoring nodata."""
    ranges = None
    for path in paths:
        ds = gdal.Open(str(path))
        if ds is None:
            continue
        n = min(ds.RasterCount, max_bands)
        if ranges is None:
            ranges = [[float("inf"), float("-inf")] for _ in range(n)]
        for b in range(min(n, len(ranges))):
            try:
                lo, hi = ds.GetRasterBand(b + 1).ComputeRasterMinMax(False)
            except RuntimeError:  # band entirely nodata
                continue
            ranges[b][0] = min(ranges[b][0], lo)
            ranges[b][1] = max(ranges[b][1], hi)
        ds = None
    if not ranges:
        return []
    return [(lo, hi) if lo <= hi else (0.0, 1.0) for lo, hi in ranges]


def _contrast(layer, band, lo, hi):
    ce = QgsContrastEnhancement(layer.dataProvider().dataType(band))
    ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum, True)
    ce.setMinimumValue(lo)
    ce.setMaximumValue(hi if hi > lo else lo + 1)
    return ce


# Radar reflectivity colours (dBZ): nothing below 5 dBZ, light blue drizzle to magenta hail cores.
REFLECTIVITY_RAMP = [(5, "#a6d8f5"), (15, "#3f8fd9"), (20, "#2fb34f"), (30, "#f2e33b"), (40, "#f39a1f"),
                     (50, "#e0271f"), (60, "#b0208f"), (70, "#f4e1ff")]


def _reflectivity_shader(lo, hi):
    from qgis.core import QgsColorRampShader, QgsRasterShader
    fn = QgsColorRampShader(REFLECTIVITY_RAMP[0][0], max(hi, REFLECTIVITY_RAMP[-1][0]))
    fn.setColorRampType(QgsColorRampShader.Interpolated)
    items = [QgsColorRampShader.ColorRampItem(v, QColor(c), f"{v} dBZ") for v, c in REFLECTIVITY_RAMP]
    if hi > REFLECTIVITY_RAMP[-1][0]:  # keep the strongest echoes drawn
        items.append(QgsColorRampShader.ColorRampItem(hi, QColor(REFLECTIVITY_RAMP[-1][1]), f"{hi:g} dBZ"))
    fn.setColorRampItemList(items)
    fn.setClip(True)  # below 5 dBZ: transparent, as radar maps show "no echo"
    shader = QgsRasterShader(REFLECTIVITY_RAMP[0][0], max(hi, REFLECTIVITY_RAMP[-1][0]))
    shader.setRasterShaderFunction(fn)
    return shader


def frame_style_of(path):
    """"reflectivity" when the frame holds radar reflectivity in dBZ (its band description, unit or
    metadata say so), else "grey" (a stretch over the frames' shared min/max; RGB for 3+ bands)."""
    ds = gdal.Open(str(path))
    if ds is None or ds.RasterCount < 1:
        return "grey"
    band = ds.GetRasterBand(1)
    words = [band.GetDescription(), band.GetUnitType()] + list((ds.GetMetadata() or {}).values()) \
        + list((band.GetMetadata() or {}).values())
    ds = None
    return "reflectivity" if any("dbz" in str(w).lower() for w in words) else "grey"


def style_frame(layer, value_range=None, style="grey"):
    """Same symbology on every frame: grey stretch (or the radar reflectivity ramp with ``style``
    "reflectivity") for 1-2 bands, RGB for >= 3 bands, with the shared min/max ``value_range``
    (list of (min, max) per band, as from ``shared_value_range``); ``style`` "auto": ``frame_style_of``."""
    if style == "auto":
        style = frame_style_of(layer.source())
    if value_range is None:
        value_range = shared_value_range([layer.source()])
    value_range = list(value_range) or [(0.0, 1.0)]
    while len(value_range) < 3:
        value_range.append(value_range[-1])
    provider = layer.dataProvider()
    if layer.bandCount() >= 3:
        r = QgsMultiBandColorRenderer(provider, 1, 2, 3)
        r.setRedContrastEnhancement(_contrast(layer, 1, *value_range[0]))
        r.setGreenContrastEnhancement(_contrast(layer, 2, *value_range[1]))
        r.setBlueContrastEnhancement(_contrast(layer, 3, *value_range[2]))
    elif style == "reflectivity":
        from qgis.core import QgsSingleBandPseudoColorRenderer
        lo, hi = value_range[0]
        shader = _reflectivity_shader(lo, hi)
        r = QgsSingleBandPseudoColorRenderer(provider, 1, shader)
        r.setClassificationMin(shader.minimumValue())
        r.setClassificationMax(shader.maximumValue())
    else:
        r = QgsSingleBandGrayRenderer(provider, 1)
        r.setContrastEnhancement(_contrast(layer, 1, *value_range[0]))
    layer.setRenderer(r)
    layer.triggerRepaint()
    return layer


# ---------------------------------------------------------------------------------- layer tree
def _group(project, group_name):
    root = project.layerTreeRoot()
    group = root.findGroup(group_name)
    if group is None:
        group = root.insertGroup(0, group_name)
    return group


def move_to_group(layer, project, group_name=FRAMES_GROUP):
    """Put an already added layer into ``group_name`` (created at the top), last in the group, its
    legend collapsed (every frame has the same one)."""
    if project is None:
        return None
    group = _group(project, group_name)
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    if node is not None and node.parent() is group:
        # the desktop adds a new layer above the current one, which may be the previous frame: move it last
        if group.children()[-1] is not node:
            group.addChildNode(node.clone())
            group.removeChildNode(node)
        group.children()[-1].setExpanded(False)
        return group
    if project.mapLayer(layer.id()) is None:
        project.addMapLayer(layer, False)
    group.addLayer(layer).setExpanded(False)
    if node is not None:
        node.parent().removeChildNode(node)
    return group


def move_to_top(layer, project):
    """Put an already added layer first in the layer tree's root (above the frames group, never in it)."""
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    if node is not None and node.parent() is root and root.children().index(node) == 0:
        return
    if project.mapLayer(layer.id()) is None:
        project.addMapLayer(layer, False)
    root.insertLayer(0, layer)
    if node is not None:
        node.parent().removeChildNode(node)


def frame_layers(paths, times, group_name=FRAMES_GROUP, project=None, style="auto", value_range=None,
                 persist_safe=False):
    """Load frame files as temporal raster layers with shared symbology.

    Frame j is active over [t_j, t_j+1) (the last over [t_N, t_N + Δt)). With ``project`` they are
    added to a group ``group_name`` (frame 000 first). Returns the layers.
    """
    paths = [str(p) for p in paths]
    if len(times) != len(paths):
        raise ValueError(f"{len(paths)} frames but {len(times)} times")
    value_range = value_range or shared_value_range(paths)
    layers = []
    group = _group(project, group_name) if project is not None else None
    if style == "auto":
        style = frame_style_of(paths[0]) if paths else "grey"
    for path, (start, end) in zip(paths, frame_ranges(times)):
        layer = QgsRasterLayer(path, frame_layer_name(path, start), "gdal")
        if not layer.isValid():
            raise ValueError(f"QGIS cannot load frame {path}")
        style_frame(layer, value_range, style)
        set_frame_time(layer, start, end, persist_safe)
        if project is not None:
            project.addMapLayer(layer, False)
            group.addLayer(layer).setExpanded(False)  # N+1 identical legends: collapsed
        layers.append(layer)
    return layers


# --------------------------------------------------------------------------------------- field
def _field_times(layer):
    idx = layer.fields().indexOf("time")
    if idx < 0:
        return []
    vals = [v for v in layer.uniqueValues(idx) if isinstance(v, QDateTime) and v.isValid()]
    return sorted(vals, key=lambda q: q.toMSecsSinceEpoch())


def field_step_seconds(layer):
    ts = _field_times(layer)
    if len(ts) < 2:
        return 0.0
    return (ts[1].toMSecsSinceEpoch() - ts[0].toMSecsSinceEpoch()) / 1000.0


FIELD_ALIASES = {"step": "step", "time": "time (UTC)", "u": "u, along x / east ({units})",
                 "v": "v, along y / north ({units})", "speed": "speed ({units})",
                 "direction": "direction (° clockwise from north, where it goes)"}


def field_units(layer):
    """m/s for a field with a CRS (exportfield's metres per second), else pixels per second."""
    return "m/s" if layer.crs().isValid() else "pixels/s"


def _nice_step(x):
    """The smallest 1, 2, 2.5 or 5 × 10^k that is >= x > 0."""
    k = 10.0 ** math.floor(math.log10(x))
    return next(m * k for m in (1, 2, 2.5, 5, 10) if m * k >= x * (1 - 1e-9))


def speed_classes(max_speed, count=5):
    """Class edges 0, s, 2s, ... with a round step s, the last edge >= ``max_speed``."""
    step = _nice_step(max_speed / count)
    edges = [0.0]
    while edges[-1] < max_speed * (1 - 1e-9):
        edges.append(round(edges[-1] + step, 12))
    return edges if len(edges) > 1 else [0.0, step]


def _decimals(value):
    """Decimals that show ``value`` (a class step or a typical magnitude) with about 2 significant digits."""
    return max(0, 1 - int(math.floor(math.log10(value)))) if value > 0 else 2


def _arrow(color, size):
    sl = QgsSimpleMarkerSymbolLayer(QgsSimpleMarkerSymbolLayerBase.Arrow, size)
    sl.setColor(QColor(color))
    sl.setStrokeColor(QColor(255, 255, 255, 200))
    sl.setStrokeWidth(0.1)
    sl.setDataDefinedProperty(QgsSymbolLayer.PropertyAngle, QgsProperty.fromField("direction"))
    symbol = QgsMarkerSymbol()
    symbol.changeSymbolLayer(0, sl)
    return symbol


def style_field_layer(layer, step_seconds=None, max_speed=None, min_size=1.8, max_size=7.0, units=None):
    """Arrow markers pointing where the motion goes (angle = "direction", clockwise from north),
    graduated by "speed" into round classes of m/s, faster = bigger and warmer (Plasma ramp), so the
    legend reads "0 – 2 m/s", "2 – 4 m/s", ...; field aliases with units and values shown rounded;
    temporal from field "time", each step visible for its duration."""
    from qgis.core import (QgsEditorWidgetSetup, QgsGraduatedSymbolRenderer, QgsRendererRange, QgsStyle)
    units = units or field_units(layer)
    idx = layer.fields().indexOf("speed")
    if max_speed is None:
        try:
            max_speed = float(layer.maximumValue(idx)) if idx >= 0 else 0.0
        except (TypeError, ValueError):
            max_speed = 0.0
    max_speed = max_speed if max_speed and max_speed > 0 else 1.0
    edges = speed_classes(max_speed)
    decimals = _decimals(edges[1] - edges[0])
    ramp = QgsStyle.defaultStyle().colorRamp("Plasma")
    n = len(edges) - 1
    ranges = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        f = i / max(n - 1, 1)
        color = ramp.color(0.85 * f) if ramp is not None else QColor("#1f3b99")
        label = f"{lo:.{decimals}f} – {hi:.{decimals}f} {units}"
        ranges.append(QgsRendererRange(lo, hi, _arrow(color, min_size + (max_size - min_size) * f), label))
    renderer = QgsGraduatedSymbolRenderer("speed", ranges)
    renderer.setClassAttribute("speed")
    layer.setRenderer(renderer)

    value_decimals = _decimals(max_speed) + 1
    for name, alias in FIELD_ALIASES.items():
        i = layer.fields().indexOf(name)
        if i < 0:
            continue
        layer.setFieldAlias(i, alias.format(units=units))
        if name in ("u", "v", "speed", "direction"):
            digits = 1 if name == "direction" else value_decimals
            layer.setEditorWidgetSetup(i, QgsEditorWidgetSetup("Range", {
                "Precision": digits, "Step": 10 ** -digits, "Style": "SpinBox",
                "Min": -1e12, "Max": 1e12, "AllowNull": True}))
    if layer.fields().indexOf("time") >= 0:
        if step_seconds is None:
            step_seconds = field_step_seconds(layer)
        set_field_time(layer, step_seconds)
    layer.setName(FIELD_LAYER_NAME)
    layer.triggerRepaint()
    return layer


def set_field_time(layer, step_seconds, field="time"):
    """Temporal properties from ``field``: each feature visible over [time, time + step_seconds).

    QGIS 3.22 compiles the "single field + fixed duration" filter ("time" > begin - duration) to
    OGR SQL where GeoPackage datetimes compare as text ('...T14:45:00.000Z' > '...T14:45:00'), so
    the previous step's arrows would show too. Start/end expressions built on ``field`` are
    evaluated by QGIS itself and select exactly one step per Temporal Controller frame.
    """
    props = layer.temporalProperties()
    props.setStartField(field)
    props.setDurationUnits(QgsUnitTypes.TemporalSeconds)
    props.setFixedDuration(float(step_seconds or 0.0))
    props.setAccumulateFeatures(False)
    if step_seconds and step_seconds > 0:
        props.setMode(QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromExpressions)
        props.setStartExpression(f'to_datetime("{field}")')
        props.setEndExpression(f'to_datetime("{field}") + make_interval(seconds:={float(step_seconds)!r})')
    else:
        props.setMode(QgsVectorLayerTemporalProperties.ModeFeatureDateTimeInstantFromField)
    props.setIsActive(True)
    return layer


def style_mesh_layer(layer, streamlines=False):
    """Show the first vector dataset group of a field mesh as arrows (or streamlines)."""
    from qgis.core import QgsMeshDatasetIndex, QgsMeshRendererVectorSettings
    dp = layer.dataProvider()
    groups = [i for i in range(dp.datasetGroupCount()) if dp.datasetGroupMetadata(i).isVector()]
    if not groups:
        return layer
    g = groups[0]
    settings = layer.rendererSettings()
    settings.setActiveVectorDatasetGroup(g)
    settings.setActiveScalarDatasetGroup(g)
    vs = settings.vectorSettings(g)
    vs.setSymbology(QgsMeshRendererVectorSettings.Streamlines if streamlines
                    else QgsMeshRendererVectorSettings.Arrows)
    vs.setOnUserDefinedGrid(True)
    vs.setUserGridCellWidth(25)
    vs.setUserGridCellHeight(25)
    settings.setVectorSettings(g, vs)
    layer.setRendererSettings(settings)
    if hasattr(layer, "setStaticVectorDataset"):
        layer.setStaticVectorDataset(QgsMeshDatasetIndex(g, 0))
    return layer


# ------------------------------------------------------------------------------------- project
def write_project(path, frame_paths, times, field_path=None, netcdf_path=None, group_name=FRAMES_GROUP,
                  style="auto", title="In-between", fps=4):
    """Write a .qgz with the temporal frame group, the styled field layer above it and (optionally) the
    NetCDF mesh; project time range [t0, tN + Δt) so the Temporal Controller, stepping by Δt,
    shows all N+1 frames; navigation animated when the project is opened. Written to a temp name
    beside ``path``, then moved. Uses its own QgsProject, never the desktop's current project."""
    path = str(path)
    if not path.lower().endswith((".qgz", ".qgs")):
        path += ".qgz"
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    project = QgsProject()
    project.setTitle(title)
    layers = frame_layers(frame_paths, times, group_name, project=project, style=style, persist_safe=True)
    if layers and layers[0].crs().isValid():
        project.setCrs(layers[0].crs())
    root = project.layerTreeRoot()
    if netcdf_path:
        # Naming MDAL's NETCDF driver skips the HDF5 probe (and its HDF5-DIAG noise on stderr).
        mesh = QgsMeshLayer(f'NETCDF:"{netcdf_path}"', f"{FIELD_LAYER_NAME} (mesh)", "mdal")
        if not mesh.isValid():
            mesh = QgsMeshLayer(str(netcdf_path), f"{FIELD_LAYER_NAME} (mesh)", "mdal")
        if mesh.isValid():
            style_mesh_layer(mesh)
            project.addMapLayer(mesh, False)
            node = root.insertLayer(0, mesh)
            node.setItemVisibilityChecked(field_path is None)
    if field_path:
        vl = QgsVectorLayer(str(field_path), FIELD_LAYER_NAME, "ogr")
        if not vl.isValid():
            raise ValueError(f"QGIS cannot load the field layer {field_path}")
        steps = frame_ranges(times)
        step = (steps[0][1] - steps[0][0]).total_seconds() if steps else None
        style_field_layer(vl, step_seconds=step)
        project.addMapLayer(vl, False)
        root.insertLayer(0, vl)
    if times:
        play_frames(project, times, fps, canvases=False)  # only this project's settings: no canvas shows it
    if layers:
        extent = layers[0].extent()
        view = project.viewSettings()
        from qgis.core import QgsReferencedRectangle
        view.setDefaultViewExtent(QgsReferencedRectangle(extent, layers[0].crs()))
    stem, ext = os.path.splitext(os.path.basename(path))
    # QGIS names the .qgs inside a .qgz after the file's base name: keep the final stem first.
    fd, tmp = tempfile.mkstemp(prefix=stem + ".part-", suffix=ext, dir=folder)
    os.close(fd)
    # a name only: QGIS backs up an existing .qgs as NAME~ before writing it, and mkstemp's file is 0600;
    # the file QGIS creates gets the umask's permissions like any other
    os.remove(tmp)
    try:
        if not project.write(tmp):
            raise OSError(f"Could not write the project {path}: {project.error()}")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        if os.path.exists(tmp + "~"):
            os.remove(tmp + "~")
        project.clear()
    return path


# ------------------------------------------------------------------------- styles inside the files
def write_frame_styles(paths, times, style="auto", value_range=None):
    """Write a default style (frame_NNN.qml beside each frame) with the shared symbology, so frames
    opened later in QGIS (dragged in, or after qgis_process) all come up with the same stretch.
    The frame's temporal range is in the .qml too, but QGIS 3.22 does not apply temporal settings
    from a default style (it does with Layer Properties > Style > Load Style). ``write_frames``
    removes these files when it replaces the frames. Returns the .qml paths."""
    paths = [str(p) for p in paths]
    value_range = value_range or shared_value_range(paths)
    out = []
    for path, (start, end) in zip(paths, frame_ranges(times)):
        layer = QgsRasterLayer(path, os.path.basename(path), "gdal")
        if not layer.isValid():
            raise ValueError(f"QGIS cannot load frame {path}")
        style_frame(layer, value_range, style)
        set_frame_time(layer, start, end, persist_safe=True)
        qml = os.path.splitext(path)[0] + ".qml"
        _msg, ok = layer.saveNamedStyle(qml)
        if not ok:
            raise OSError(f"Could not write the style {qml}: {_msg}")
        out.append(qml)
    return out


def embed_field_style(gpkg_path, layer_name="advection_field", step_seconds=None):
    """Store the arrow styling as the GeoPackage layer's default style (layer_styles table), so QGIS
    draws arrows whenever the file is opened. (Temporal settings are saved with it but QGIS 3.22
    does not apply them from a default style.) Returns True on success."""
    uri = f"{gpkg_path}|layername={layer_name}"
    layer = QgsVectorLayer(uri, FIELD_LAYER_NAME, "ogr")
    if not layer.isValid():
        layer = QgsVectorLayer(str(gpkg_path), FIELD_LAYER_NAME, "ogr")
    if not layer.isValid():
        return False
    style_field_layer(layer, step_seconds=step_seconds)
    msg = layer.saveStyleToDatabase("inbetween", "In-between advection field: arrows and time", True, "")
    return not msg
