"""ONNX export of a trained model for inference, and a tile runner that needs onnxruntime only.

``export_onnx(model_path, onnx_path)`` writes one self-describing ``.onnx``: the whole per-tile network
(encoder φ, field net η, the N semi-Lagrangian advection steps with ``GridSample``, decoder ψ) as one
graph, opset 17, with dynamic tile height and width.  Graph inputs: ``x0``, ``x1`` (1, C, h, w) —
normalised with the model's stored range (and, in paper mode, scaled per tile, done outside) — and, in
accurate mode, ``flow`` (1, 2, h, w): the initial DIS flow in pixels, computed outside with OpenCV
(model/fieldinit.py, no torch), or, in paper mode with ``coord_input``, ``coords`` (1, 2, h, w): the tile's
place in the whole image (model/patches.image_coords, computed outside); in accurate mode also, as the
model's configuration asks, ``border`` (1, 1, 1, 1): the pair's border weight (fieldinit.border_weight),
``seen`` (1, 1, h, w): 1 where the pair is valid (a trajectory from a gap counts as from outside), and
``several`` (1, 1, 1, 1): 1 when the pair's start has several motions (advection.time_blend); in accurate
mode ``steps`` (1, 4N, h, w) or (1, 4N, 1, 1): what the start's per-step fields add to ``flow`` / N (per step
the forward rollout's x, y, then the backward rollout's, pixels), zeros (1, 4N, 1, 1) but where the start is
rigid pieces (fieldinit.Start.pieces; graphs exported before it have no such input and move the pieces by
``flow``).  Outputs: ``frames`` (1, (N+1)·C, h, w), the normalised frames 0..N in
order, and ``fields`` (1, 2N, h, w), the per-step displacements in pixels (x then y per step).  The model
file's JSON header is stored in the ONNX ``metadata_props`` under ``inbetween`` (plus an ``onnx`` entry:
opset, inputs, layout and the normalisation range), so the file is all inference needs.

``OnnxTileRunner(path, device)`` runs that graph with onnxruntime (CUDA execution provider when present
and the device allows it, else CPU) behind the interface of model/inference.py, so ``generate_frames``,
``iter_frame_blocks`` and the Processing algorithms accept it in place of the torch model.  This module
imports torch only inside ``export_onnx``/``verify_against_torch``.
"""
import json

import numpy as np

from .modelfile import META_KEY  # noqa: E402  (one key for both kinds of model file)
OPSET = 17


# ---------------------------------------------------------------------------------------------
# Export (torch)

def _wrapper(model):
    """An nn.Module with the inference of ``model`` (InBetweenNet.frames/fields) written with tensor
    shapes only (no Python ints from shapes), so the traced graph works for any tile size."""
    import torch
    import torch.nn as nn
    from .inference import decoder_is_zero
    from .advection import blend_inputs, data_mask, ends_kept, rollouts, time_blend

    class Export(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net
            self.cfg = net.cfg
            # ψ's output is exactly zero (train_decoder=False): frames = the blend of the advected ends,
            # so the graph leaves out the encoder and decoder (model/inference.decoder_is_zero)
            self.skip_latent = decoder_is_zero(net)

        def _decode(self, z, base):
            if self.cfg.residual_decoder:
                return base + self.net.decoder(torch.cat([z, base], dim=1))
            return self.net.decoder(z)

        def forward(self, x0, x1, third=None, border=None, seen=None, several=None, steps=None):
            """``third``: the flow (accurate mode with flow_init) or the coordinates (paper mode with
            coord_input), the graph's third input; absent otherwise.  ``border`` (1, 1, 1, 1), with
            ``border_trust``: the pair's border weight (fieldinit.border_weight); ``seen`` (1, 1, h, w),
            with ``gaps_as_border``: 1 where the pair is valid; ``several`` (1, 1, 1, 1), with
            ``whole_stretch``: 1 when the pair's start has several motions; ``steps`` (1, 4N, h, w) or
            (1, 4N, 1, 1), with ``flow``: what the start's per-step fields add to flow / N, per step the
            forward rollout's, then the backward rollout's."""
            cfg, net = self.cfg, self.net
            n = cfg.steps
            flow = third
            if cfg.mode == "paper":
                raw = net.field_net(torch.cat([x0, third], dim=1) if net.uses_coords else x0)
                disp = [raw[:, 2 * j:2 * j + 2] * (cfg.dt * cfg.patch_size) for j in range(n)]
                back = disp
            else:
                inp = [x0, x1] + ([flow / 10.0] if cfg.flow_init else [])
                raw = net.residual(net.field_net(torch.cat(inp, dim=1)))
                base = flow / n if cfg.flow_init else 0.0
                disp = [raw[:, 2 * j:2 * j + 2] + base + (steps[:, 4 * j:4 * j + 2] if steps is not None else 0.0)
                        for j in range(n)]
                back = disp if steps is None else [raw[:, 2 * j:2 * j + 2] + base + steps[:, 4 * j + 2:4 * j + 4]
                                                   for j in range(n)]
            forward, backward = rollouts(getattr(cfg, "sample_once", False))
            fields = torch.stack(disp, dim=1)                  # (1, N, 2, h, w)
            backs = fields if back is disp else torch.stack(back, dim=1)   # the backward rollout's
            out = [x0]
            stretch = getattr(cfg, "stretch_blend", False)
            border = 1.0 if border is None else border
            x0c, x1c = blend_inputs(x0, x1, False, stretch)
            mask = data_mask(seen) if seen is not None else None
            if self.skip_latent:
                fwd, bwd = forward(x0c, fields), backward(x1c, backs)
                ends = ends_kept(fwd, bwd) if several is not None else None
                for j in range(1, n):
                    out.append(time_blend(fwd[j], bwd[j], j / n, False, stretch, border, mask, ends, several,
                                          getattr(cfg, "ends_squared", False)))
                out.append(x1)
                return torch.cat(out, dim=1), torch.cat(disp, dim=1)
            z0 = net.encoder(x0)
            if not cfg.bidirectional:
                zs = forward(z0, fields)
                for j in range(1, n):
                    out.append(self._decode(zs[j], x0) if cfg.residual_decoder else net.decoder(zs[j]))
            else:
                z1 = net.encoder(x1)
                fwd = forward(torch.cat([z0, x0c], 1), fields)
                bwd = backward(torch.cat([z1, x1c], 1), backs)
                ends = ends_kept(fwd, bwd) if several is not None else None
                for j in range(1, n):
                    mix = time_blend(fwd[j], bwd[j], j / n, False, stretch, border, mask, ends, several,
                                     getattr(cfg, "ends_squared", False))
                    z, base = mix[:, :1], mix[:, 1:]
                    out.append(self._decode(z, base) if cfg.residual_decoder else net.decoder(z))
            out.append(x1)
            return torch.cat(out, dim=1), torch.cat(disp, dim=1)

    return Export(model).eval()


def _example(model, h, w, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    c = int(model.bands)
    x0 = torch.rand(1, c, h, w, generator=g) * 2 - 1
    x1 = torch.roll(x0, (2, 3), (2, 3))
    if getattr(model, "uses_coords", False):   # paper mode: the coordinates of a tile inside a larger image
        from .patches import image_coords
        return x0, x1, torch.from_numpy(image_coords(2 * h + 5, 3 * w, h // 2, h // 2 + h, w, 2 * w))[None]
    flow = torch.ones(1, 2, h, w) * torch.tensor([3.0, 2.0]).view(1, 2, 1, 1)
    # spreading out from the middle, so the blend's stretch weights are below 1 and their paths checked
    flow[0, 0] += 0.1 * (torch.arange(w, dtype=torch.float32) - w / 2).view(1, w)
    flow[0, 1] += 0.1 * (torch.arange(h, dtype=torch.float32) - h / 2).view(h, 1)
    return x0, x1, flow


def export_onnx(model_path, onnx_path, tile=96, verify=True, log=None):
    """Export the model file ``model_path`` to ``onnx_path``; returns the verification figures (dict:
    max abs difference to torch over frames and fields, at two tile sizes) when ``verify``."""
    import os
    import torch
    import onnx
    from .modelfile import load_model

    model, header = load_model(model_path)
    model.float().eval()
    uses_flow = bool(model.cfg.mode != "paper" and model.cfg.flow_init)
    uses_coords = bool(model.uses_coords)
    border = bool(model.uses_border)
    seen = bool(getattr(model, "uses_seen", False))   # implies border
    several = bool(getattr(model, "uses_several", False))
    wrapper = _wrapper(model)
    names = (["x0", "x1"] + (["flow"] if uses_flow else []) + (["coords"] if uses_coords else [])
             + (["border"] if border else []) + (["seen"] if seen else []) + (["several"] if several else [])
             + (["steps"] if uses_flow else []))
    x0, x1, third = _example(model, tile, tile)
    args = (x0, x1, third) if uses_flow or uses_coords else (x0, x1)
    # the optional inputs by name: a graph may have any of them without the ones before it
    kwargs = example_extras(border, seen, several, tile, tile)
    if uses_flow:
        kwargs["steps"] = example_steps(third, model.cfg.steps) - third.repeat(1, 2 * model.cfg.steps, 1, 1) / model.cfg.steps
    axes = {nm: {2: "h", 3: "w"} for nm in names + ["frames", "fields"] if nm not in ("border", "several", "steps")}
    axes["steps"] = {2: "steps_h", 3: "steps_w"}   # (1, 1) where the start has no per-step fields
    tmp = str(onnx_path) + ".tmp"
    with torch.no_grad():
        torch.onnx.export(wrapper, args, tmp, kwargs=kwargs, input_names=names, output_names=["frames", "fields"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    proto = onnx.load(tmp)
    meta = dict(header)
    meta["checksum"] = graph_checksum(proto)   # of this file's graph (the .inbetween's does not apply)
    meta["onnx"] = {"opset": OPSET, "inputs": names, "outputs": ["frames", "fields"],
                    "frames_layout": "(1, (N+1)*C, h, w): frames 0..N, normalised",
                    "fields_layout": "(1, 2N, h, w): per step (dx, dy) in pixels",
                    "norm_lo": model.norm_lo.tolist(), "norm_hi": model.norm_hi.tolist()}
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, tmp)
    os.replace(tmp, onnx_path)
    if not verify:
        return {}
    return verify_against_torch(model, onnx_path)


def graph_checksum(proto):
    """SHA-256 (hex) of an ONNX model's graph (nodes and weights; the metadata lies outside it)."""
    import hashlib

    return hashlib.sha256(proto.graph.SerializeToString()).hexdigest()


def verify_onnx_checksum(path, header):
    """ModelFileError when the graph of the .onnx at ``path`` does not match the checksum in its header; False
    when it cannot be checked (no ``onnx`` package, or an export without a checksum), True when it matches."""
    from .modelfile import ModelFileError

    if "checksum" not in header:
        return False
    try:
        import onnx
    except ImportError:
        return False
    try:
        proto = onnx.load(str(path))
    except Exception as e:
        raise ModelFileError(f"{path} is damaged: it is not a readable ONNX model ({e}); export it again.") from e
    if graph_checksum(proto) != header["checksum"]:
        raise ModelFileError(f"{path} is damaged: the checksum of its graph does not match the one written with it "
                             f"(the file was changed or corrupted after the export); use an intact copy or export "
                             f"it again.")
    return True


EXAMPLE_BORDER = 0.3   # a border weight strictly between blending and trusting, so both paths are checked
EXAMPLE_SEVERAL = 0.7  # likewise for the several-motions weight


def example_seen(h, w):
    """A validity mask (1, 1, h, w) with a gap in it (a block without data), so that path is exported
    and checked too."""
    import torch

    seen = torch.ones(1, 1, h, w)
    seen[..., h // 3:h // 2, w // 4:w // 2] = 0.0
    return seen


def example_steps(flow, n):
    """Per-step fields (1, 4N, h, w) for the example ``flow``: flow / N, each step and each rollout scaled
    differently (so the graph's per-step path is exported and checked, not one field repeated)."""
    import torch

    return torch.cat([flow / n * (0.5 + j / max(n - 1, 1) + 0.2 * r) for j in range(n) for r in (0, 1)], dim=1)


def example_extras(border, seen, several, h, w):
    """The example values of the optional graph inputs a model has, by name (the wrapper's keywords)."""
    import torch

    out = {}
    if border:
        out["border"] = torch.full((1, 1, 1, 1), EXAMPLE_BORDER)
    if seen:
        out["seen"] = example_seen(h, w)
    if several:
        out["several"] = torch.full((1, 1, 1, 1), EXAMPLE_SEVERAL)
    return out


def verify_against_torch(model, onnx_path, sizes=((96, 96), (72, 120))):
    """Max abs difference between torch (model.frames/fields) and the .onnx over example tiles."""
    import torch

    runner = OnnxTileRunner(onnx_path, "cpu")
    worst = {"frames": 0.0, "fields": 0.0}
    for k, (h, w) in enumerate(sizes):
        x0, x1, third = _example(model, h, w, seed=h + w)
        fl = third if runner.uses_flow else None
        cc = third if runner.uses_coords else None
        border = EXAMPLE_BORDER if runner.uses_border else 1.0
        seen = example_seen(h, w) if runner.uses_seen else None
        several = EXAMPLE_SEVERAL if runner.uses_several else 0.0
        # per-step fields on the first tile, none (zeros broadcast in the graph) on the others
        steps = example_steps(fl, runner.steps).view(1, runner.steps, 4, h, w) if runner.uses_steps and k == 0 else None
        with torch.no_grad():
            frames, disp = model.frames(x0, x1, fl, cc, border, seen, several, steps)
            ref_f = torch.cat(frames, 0).numpy()
            ref_d = disp[0].numpy()
        got_f, got_d = runner.run(x0[0].numpy(), x1[0].numpy(), fl[0].numpy() if fl is not None else None,
                                  cc[0].numpy() if cc is not None else None, border,
                                  seen[0, 0].numpy() if seen is not None else None, several,
                                  steps[0].numpy() if steps is not None else None)
        worst["frames"] = max(worst["frames"], float(np.abs(got_f - ref_f).max()))
        worst["fields"] = max(worst["fields"], float(np.abs(got_d - ref_d).max()))
    return worst


# ---------------------------------------------------------------------------------------------
# Inference (onnxruntime only)

def read_onnx_header(path):
    """The JSON header stored in an In-between .onnx (ModelFileError when it is not one)."""
    import os
    from .modelfile import ModelFileError

    if not os.path.isfile(path):
        raise ModelFileError(f"model file not found: {path}")
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelFileError(f"{path} is not a readable ONNX model: {e}") from e
    return _header_of(sess, path)


def _header_of(sess, path):
    from .modelfile import ModelFileError, header_from_metadata

    header = header_from_metadata(sess.get_modelmeta().custom_metadata_map, path, "an ONNX model")
    if "onnx" not in header or "config" not in header:
        raise ModelFileError(f"{path}: not an In-between ONNX header")
    return header


def _providers(device):
    import onnxruntime as ort

    name = (device or "auto").lower()
    have = ort.get_available_providers()
    if name == "cpu":
        return ["CPUExecutionProvider"]
    if name.startswith("cuda"):
        if "CUDAExecutionProvider" not in have:
            raise ValueError("DEVICE=cuda but onnxruntime has no CUDA execution provider "
                             "(install onnxruntime-gpu) — use auto or cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in have else []) + ["CPUExecutionProvider"]


class OnnxTileRunner:
    """Runs an In-between .onnx on tiles (model/inference.py's runner interface), onnxruntime only."""

    def __init__(self, path, device="auto", threads=None):
        import onnxruntime as ort
        from .modelfile import ModelFileError

        self.path = str(path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(self.path, sess_options=opts, providers=_providers(device))
        except ValueError:
            raise
        except Exception as e:
            raise ModelFileError(f"{path} is not a readable ONNX model: {e}") from e
        self.header = _header_of(self.session, path)
        self.verified = verify_onnx_checksum(path, self.header)
        cfg, info = self.header["config"], self.header["onnx"]
        self.bands = int(self.header["bands"])
        self.steps = int(self.header["steps"])
        self.lo = np.asarray(info["norm_lo"], np.float32)
        self.hi = np.asarray(info["norm_hi"], np.float32)
        self.uses_flow = "flow" in info["inputs"]
        self.uses_coords = "coords" in info["inputs"]
        self.uses_border = "border" in info["inputs"]
        self.uses_seen = "seen" in info["inputs"]
        self.uses_several = "several" in info["inputs"]
        self.uses_steps = "steps" in info["inputs"]   # exports from before it move rigid pieces by the flow
        self.flow_smooth = float(cfg.get("flow_smooth", 2.0))
        self.flow_prior = cfg.get("flow_prior", "auto")
        self.flow_log_view = bool(cfg.get("flow_log_view", False))
        self.rigid_steps = bool(cfg.get("rigid_steps", False)) and self.uses_steps
        self.tail_match = float(cfg.get("tail_match", 0.0))
        self.patch_norm = bool(cfg.get("patch_norm", False))
        self.providers = self.session.get_providers()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, a, b, fl=None, coords=None, border=1.0, seen=None, several=0.0, steps=None):
        """Normalised (C, h, w) inputs → frames (N+1, C, h, w), fields (N, 2, h, w), as the graph gives.
        ``coords`` (a graph with a ``coords`` input): the tile's place in the whole image; None: the tile is
        the whole image.  ``border`` (a graph with a ``border`` input): the pair's border weight;
        ``seen`` (h, w) (a graph with a ``seen`` input): True where the pair is valid, None: everywhere;
        ``several`` (a graph with a ``several`` input): 1.0 when the pair's start has several motions;
        ``steps`` (N, 4, h, w) (a graph with a ``steps`` input): the start's per-step fields for the forward
        and the backward rollout, None: flow / N each step (a graph exported before that input moves rigid
        pieces by ``fl`` and ignores them)."""
        feed = {"x0": np.ascontiguousarray(a, np.float32)[None], "x1": np.ascontiguousarray(b, np.float32)[None]}
        if self.uses_flow:
            feed["flow"] = np.ascontiguousarray(fl, np.float32)[None]
        if self.uses_coords:
            if coords is None:
                from .patches import image_coords
                coords = image_coords(*a.shape[-2:])
            feed["coords"] = np.ascontiguousarray(coords, np.float32)[None]
        if self.uses_border:
            feed["border"] = np.full((1, 1, 1, 1), border, np.float32)
        if self.uses_seen:
            h, w = a.shape[-2:]
            feed["seen"] = (np.ones((1, 1, h, w), np.float32) if seen is None
                            else np.ascontiguousarray(seen, np.float32).reshape(1, 1, h, w))
        if self.uses_several:
            feed["several"] = np.full((1, 1, 1, 1), several, np.float32)
        if self.uses_steps:   # what the per-step fields add to flow / N; none: zeros, broadcast in the graph
            h, w = a.shape[-2:]
            per = np.asarray(fl, np.float32) / np.float32(self.steps)
            feed["steps"] = (np.zeros((1, 4 * self.steps, 1, 1), np.float32) if steps is None else np.ascontiguousarray(
                (np.asarray(steps, np.float32) - np.concatenate([per, per])[None]).reshape(1, 4 * self.steps, h, w)))
        frames, fields = self.session.run(["frames", "fields"], feed)
        h, w = a.shape[-2:]
        return (frames.reshape(self.steps + 1, self.bands, h, w), fields.reshape(self.steps, 2, h, w))

    def frames(self, a, b, fl, valid, coords=None, border=1.0, several=0.0, steps=None):
        scale = None
        if self.patch_norm:
            a, b, scale = _patch_scale(a, b, valid)
        res, _ = self.run(a, b, fl, coords, border, valid, several, steps)
        if scale is not None:
            res = (res + 1.0) * 0.5 * scale[1] + scale[0]
        return np.clip(res, -1.0, 1.0).astype(np.float32)

    def fields(self, a, b, fl, valid, coords=None, steps=None):
        if self.patch_norm:
            a, b, _ = _patch_scale(a, b, valid)
        return self.run(a, b, fl, coords, steps=steps)[1]


def _patch_scale(a, b, valid):
    """model/patches.patch_scale for one tile, in numpy."""
    both = np.concatenate([a, b])
    vals = both[:, valid] if valid.any() else np.zeros((0,), np.float32)
    if vals.size == 0:
        lo, hi = np.float32(-1.0), np.float32(1.0)
    else:
        lo, hi = np.float32(vals.min()), np.float32(vals.max())
    span = np.float32(max(hi - lo, 1e-3))
    f = lambda x: (2.0 * (x - lo) / span - 1.0).astype(np.float32)
    return f(a), f(b), (lo, span)
