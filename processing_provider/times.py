"""Acquisition times of rasters: from parameters, metadata or file names.

No QGIS import is needed here (QDateTime values are duck-typed), so the module is usable from
plain scripts and tests; every datetime it returns is timezone-aware UTC.
"""
import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from osgeo import gdal

from .raster_io import InputError

UTC = timezone.utc

# Metadata items that carry an acquisition time, most specific first (compared case-insensitively,
# spaces/underscores/dashes ignored).
TIME_KEYS = [
    "ACQUISITION_DATETIME", "ACQUISITION_START_TIME", "ACQUISITIONSTARTTIME", "ACQUISITION_TIME",
    "ACQUISITION_DATE_TIME", "SENSING_TIME", "SENSING_START", "FIRST_LINE_TIME", "START_TIME",
    "PRODUCT_START_TIME", "IMAGE_DATE", "OBSERVATION_TIME", "OBSERVATIONTIME", "DATE_TIME",
    "NC_GLOBAL#TIME_COVERAGE_START", "TIME_COVERAGE_START", "DATETIME", "TIFFTAG_DATETIME",
    "TIME", "DATE",
]
_SKIP_DOMAINS = {"IMAGE_STRUCTURE", "DERIVED_SUBDATASETS", "SUBDATASETS", "RPC", "GEOLOCATION",
                 "COLOR_PROFILE"}


def _norm_key(key):
    return re.sub(r"[\s_\-]", "", str(key)).upper()


_KEY_RANK = {_norm_key(k): i for i, k in enumerate(TIME_KEYS)}

_ISO = re.compile(
    r"(?<!\d)(\d{4})[-:/_.]?(\d{2})[-:/_.]?(\d{2})"          # date
    r"(?:[T\s_]*(\d{2})[:_\-h]?(\d{2})(?:[:_\-m]?(\d{2})(?:[.,](\d{1,9}))?)?)?"  # time
    r"\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?(?!\d)",
    re.IGNORECASE)


def parse_time(text, date_only=True):
    """Parse one time stamp out of ``text``; naive stamps are taken as UTC.

    Accepts ISO 8601, EXIF/TIFF ("YYYY:MM:DD hh:mm:ss"), compact ("YYYYMMDDhhmm[ss]", "YYYYMMDDThhmmss")
    and file-name styles ("2020-03-19T16_01Z"). Returns None when no plausible stamp is found.
    With ``date_only`` False, stamps without a time of day are ignored.
    """
    if text is None:
        return None
    text = str(text).strip()
    if not text:
        return None
    best = None
    for m in _ISO.finditer(text):
        y, mo, d, hh, mi, ss, frac, tz = m.groups()
        if hh is None and not date_only:
            continue
        try:
            dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0),
                          int((frac or "0")[:6].ljust(6, "0")))
        except ValueError:
            continue
        if not 1900 <= dt.year <= 2200:
            continue
        offset = timedelta(0)
        if tz and tz[0] in "+-":
            digits = tz[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            if tz[0] == "-":
                offset = -offset
        dt = (dt - offset).replace(tzinfo=UTC)
        # Prefer stamps that carry a time of day over bare dates.
        if hh is not None:
            return dt
        if best is None:
            best = dt
    return best


def _xml_items(value):
    """Items of a GDAL_METADATA XML blob (GDAL leaves it unparsed in some files, e.g. FMI's)."""
    try:
        root = ET.fromstring(value)
    except ET.ParseError:
        return {}
    return {item.get("name", ""): (item.text or "") for item in root.iter("Item")}


def metadata_items(ds):
    """All (key, value) metadata pairs of a dataset and its first band, over the useful domains."""
    items = []
    domains = [""] + [d for d in (ds.GetMetadataDomainList() or []) if d and d.upper() not in _SKIP_DOMAINS
                      and not d.startswith("xml:")]
    objects = [ds]
    if ds.RasterCount:
        objects.append(ds.GetRasterBand(1))
    for obj in objects:
        for dom in domains:
            md = obj.GetMetadata(dom) or {}
            if isinstance(md, list):
                continue
            for k, v in md.items():
                if _norm_key(k) == "GDALMETADATA":
                    items.extend(_xml_items(v).items())
                else:
                    items.append((k, v))
    return items


def metadata_time(path):
    """(datetime, key) from the raster's metadata, or (None, None)."""
    ds = None
    with _Quiet():
        try:
            ds = gdal.OpenEx(str(path), gdal.OF_RASTER | gdal.OF_READONLY)
        except RuntimeError:  # unreadable: read_pair reports that; here only the file name can help
            ds = None
    if ds is None:
        return None, None
    found = []
    for k, v in metadata_items(ds):
        rank = _KEY_RANK.get(_norm_key(k))
        if rank is None:
            continue
        t = parse_time(v)
        if t is not None:
            found.append((rank, t, k))
    ds = None
    if not found:
        return None, None
    found.sort(key=lambda r: r[0])
    return found[0][1], found[0][2]


class _Quiet:
    def __enter__(self):
        gdal.PushErrorHandler("CPLQuietErrorHandler")

    def __exit__(self, *exc):
        gdal.PopErrorHandler()


def filename_time(path):
    """A time stamp in the file name (with a time of day preferred), or None."""
    name = os.path.basename(str(path))
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return parse_time(stem)


def read_time(path, with_source=False):
    """The acquisition time of a raster as tz-aware UTC datetime, or None.

    Metadata first (ACQUISITION_DATETIME, ..., TIFFTAG_DATETIME, FMI's "Observation time"), then an
    ISO-like stamp in the file name. With ``with_source`` returns (time, description).
    """
    t, key = metadata_time(path)
    source = f"metadata item {key}" if t is not None else None
    if t is None:
        t = filename_time(path)
        source = "file name" if t is not None else None
    return (t, source) if with_source else t


def to_datetime(value):
    """QDateTime / datetime / ISO string / None -> tz-aware UTC datetime or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if hasattr(value, "toMSecsSinceEpoch"):  # QDateTime
        if value.isNull() or not value.isValid():
            return None
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value.toMSecsSinceEpoch())
    if isinstance(value, str):
        if not value.strip():
            return None
        t = parse_time(value)
        if t is None:
            raise InputError(f"Cannot read a date and time from '{value}'.")
        return t
    raise InputError(f"Unsupported time value {value!r}.")


def resolve_times(start, end, first_path, second_path, names=("START_TIME", "END_TIME"),
                  layer_names=("FIRST", "SECOND"), sources=None, fallback=None, warnings=None):
    """(t0, t1) from the parameters, else from the rasters' metadata or file names, else from ``fallback``.

    ``fallback`` (t0, t1), e.g. the times a model was trained on, is used only for what the pair does not
    tell: both times when neither is known, else the known one ± the fallback's interval; ``warnings`` (a
    list) then receives a line saying so. Without it, a time missing everywhere raises InputError naming
    the parameter; t1 <= t0 raises too. ``sources`` (a list) receives one line per time saying where it
    came from.
    """
    found = []
    for value, path, pname, lname in ((start, first_path, names[0], layer_names[0]),
                                      (end, second_path, names[1], layer_names[1])):
        t = to_datetime(value)
        src = f"{pname} parameter"
        if t is None:
            t, how = read_time(path, with_source=True) if path else (None, None)
            src = f"{lname}'s {how}"
            if t is None and fallback is None:
                raise InputError(
                    f"{pname} is empty and no acquisition time was found in {lname}'s metadata "
                    f"(TIFFTAG_DATETIME, ACQUISITION_DATETIME, ...) or file name ({path}). "
                    f"Please set {pname}.")
        found.append((t, src, pname, lname))
    missing = [f for f in found if f[0] is None]
    if missing:
        f0, f1 = (to_datetime(t) for t in fallback)
        if len(missing) == 2:
            found = [(f0, "the model's stored times", *found[0][2:]), (f1, "the model's stored times", *found[1][2:])]
        elif found[0][0] is None:
            found[0] = (found[1][0] - (f1 - f0), "the other time less the model's interval", *found[0][2:])
        else:
            found[1] = (found[0][0] + (f1 - f0), "the other time plus the model's interval", *found[1][2:])
        if warnings is not None:
            which = " and ".join(f"{m[2]}" for m in missing)
            warnings.append(f"{which}: no time given or found in {', '.join(m[3] for m in missing)}'s metadata or "
                            f"file name, so the model's stored times ({f0.isoformat()} → {f1.isoformat()}) are used "
                            f"as a fallback; set {which} if this pair was taken at other times (times and "
                            f"speeds depend on it).")
    for t, src, pname, _ in found:
        if sources is not None:
            sources.append(f"{pname} = {t.isoformat()} (from {src})")
    t0, t1 = found[0][0], found[1][0]
    if t1 <= t0:
        if found[0][1].startswith(layer_names[0]) and found[1][1].startswith(layer_names[1]):
            raise InputError(f"{layer_names[1]}'s time ({t1.isoformat()}, from {found[1][1]}) is not after "
                             f"{layer_names[0]}'s ({t0.isoformat()}, from {found[0][1]}): swap {layer_names[0]} and "
                             f"{layer_names[1]}, or set {names[0]} and {names[1]}.")
        raise InputError(f"{names[1]} ({t1.isoformat()}) must be after {names[0]} ({t0.isoformat()}).")
    return t0, t1


def frame_times(t0, t1, steps):
    """N+1 equally spaced times from t0 to t1 inclusive (t1 exactly as given)."""
    steps = int(steps)
    if steps < 1:
        raise InputError("STEPS must be at least 1.")
    t0, t1 = to_datetime(t0), to_datetime(t1)
    dt = (t1 - t0) / steps
    return [t0 + j * dt for j in range(steps)] + [t1]


def tiff_datetime(t):
    """TIFFTAG_DATETIME text ("YYYY:MM:DD HH:MM:SS", UTC)."""
    return to_datetime(t).strftime("%Y:%m:%d %H:%M:%S")
