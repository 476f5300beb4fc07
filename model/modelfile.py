"""The model file: one safetensors file (weights) whose metadata holds one JSON header.

Loading uses ``safetensors`` only (no pickle), so no code from the file is ever executed.
Header (metadata key ``inbetween``): format "inbetween-model", format_version, preset, mode, config,
steps, bands, normalisation, training figures, ``extra`` (the caller's dict, verbatim: times, CRS,
geotransform, band names ...) and, from format version 2, ``checksum``: the SHA-256 of the rest of the
header and of every weight, checked on load, so a damaged file is refused instead of giving wrong frames.
A model file is recognised by its content, whatever its name (``model_kind``).
"""
import hashlib
import json
import os
import re

FORMAT_NAME = "inbetween-model"
FORMAT_VERSION = 2
META_KEY = "inbetween"
CHECKSUM_KEY = "checksum"


class ModelFileError(Exception):
    """The file is not a readable In-between model file."""


def checksum(header, tensors):
    """SHA-256 (hex) of the header without its checksum (canonical JSON) and of every tensor (name, dtype,
    shape and bytes, in name order)."""
    import torch

    h = hashlib.sha256()
    rest = {k: v for k, v in header.items() if k != CHECKSUM_KEY}
    h.update(json.dumps(rest, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _reason(error):
    """The one-line cause of a failed write (an OSError's text, or the OS message inside a safetensors
    error)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    found = re.search(r'message: "([^"]+)"', str(error))
    return found.group(1) if found else str(error).splitlines()[0]


def save_model(path, result, extra_header=None):
    from safetensors.torch import save_file

    model = result.model
    cfg = result.config
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "preset": cfg.preset,
        "mode": cfg.mode,
        "steps": cfg.steps,
        "bands": int(result.bands),
        "config": cfg.to_dict(),
        "normalisation": result.normalisation,
        "training": {"seconds": float(result.seconds), "device": str(result.device),
                     "iterations": cfg.iterations,
                     "final_losses": result.history[-1] if result.history else None,
                     **(result.figures or {})},
        "extra": extra_header or {},
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    try:
        header = json.loads(json.dumps(header))   # the checksum covers the header as it will be read back
    except (TypeError, ValueError) as e:
        raise ValueError(f"extra_header must be JSON-serialisable: {e}") from e
    header[CHECKSUM_KEY] = checksum(header, tensors)
    path = os.path.abspath(str(path))
    # a hidden temporary name beside the target, marked with the process id; moved into place when complete
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        save_file(tensors, tmp, metadata={META_KEY: json.dumps(header)})
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, Exception):
            raise ModelFileError(f"Could not write the model file {path}: {_reason(e)}; nothing was "
                                 f"written.") from e
        raise


def model_kind(path):
    """"safetensors" (a model file from Train) or "onnx" (its ONNX export), judged by the file's first bytes
    whatever its name; ModelFileError when it is neither or cannot be read."""
    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = os.path.getsize(path)
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror}") from None
    if len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= size:
        return "safetensors"
    if head[:1] == b"\x08":   # an ONNX ModelProto starts with its ir_version (field 1, varint)
        return "onnx"
    raise ModelFileError(f"{path} is not an In-between model file (neither a model written by Train nor "
                         f"its ONNX export); choose the file Train wrote.")


def header_from_metadata(meta, path, kind):
    """The JSON header under the ``inbetween`` key of a file's metadata map (safetensors or ONNX, ``kind``
    names it in errors) as a dict; raises ModelFileError when it is missing or not a JSON object."""
    if META_KEY not in meta:
        raise ModelFileError(f"{path} is {kind} but not an In-between model (no header)")
    try:
        header = json.loads(meta[META_KEY])
    except ValueError as e:
        raise ModelFileError(f"{path}: the model header is not valid JSON: {e}") from e
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the model header is not a JSON object")
    return header


def read_header(path):
    """Header dict of a model file, validated; raises ModelFileError."""
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise ModelFileError(f"{path} is not an In-between model file (not a readable safetensors "
                             f"file, perhaps truncated or of another kind): {e}") from e
    header = header_from_metadata(meta, path, "a safetensors file")
    if header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an In-between model file (format is {header.get('format')!r})")
    version = header.get("format_version")
    if version == 2 and CHECKSUM_KEY not in header:
        raise ModelFileError(f"{path}: the model header lacks its checksum; the file is damaged")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFileError(f"{path}: unsupported model format version {version!r} "
                             f"(this plugin reads up to {FORMAT_VERSION}); update the plugin")
    for key in ("config", "bands", "steps", "normalisation"):
        if key not in header:
            raise ModelFileError(f"{path}: the model header lacks {key!r}")
    return header


def load_model(path, map_location="cpu"):
    """Return (model in eval mode, header dict)."""
    import torch
    from safetensors.torch import load_file
    from .presets import TrainConfig
    from .networks import InBetweenNet

    header = read_header(path)
    try:
        cfg = TrainConfig.from_dict(header["config"])
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: invalid configuration in the model header: {e}") from e
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:
        raise ModelFileError(f"{path}: the weights cannot be read (truncated file?): {e}") from e
    if CHECKSUM_KEY in header and checksum(header, tensors) != header[CHECKSUM_KEY]:
        raise ModelFileError(f"{path} is damaged: the checksum of its weights and header does not match the "
                             f"one written with it (the file was changed or corrupted after Train wrote it); "
                             f"use an intact copy or train again.")
    model = InBetweenNet(cfg, int(header["bands"]))
    model.register_buffer("norm_lo", torch.zeros(int(header["bands"])))
    model.register_buffer("norm_hi", torch.ones(int(header["bands"])))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: the weights do not match the architecture in the header: {e}") from e
    model.eval()
    model.to(map_location)
    return model, header
