"""Semi-Lagrangian advection on a pixel grid with ``grid_sample`` (bilinear).

One step: Z(x, t+Δt) = Z(x − d(x), t), d = displacement per step in *pixels* (channel 0 = +x, columns,
channel 1 = +y, rows), so content moves by +d.  The paper's fields W live in the latent domain [0, 1]²;
the caller converts them (d = W·Δt·patch_size).

Boundary (inflow/outflow): the sampling uses ``padding_mode="border"``: a departure point outside the
domain takes the value at the nearest border pixel.  Content leaves the domain freely through the
downstream side (outflow) and the upstream border value is carried inwards (inflow of whatever is at
the edge), so nothing is reflected or wrapped around.

The sampling grid is always built and used in float32, also under bf16 autocast (a bf16 grid rounds
coordinates by up to 0.25 px at every step).
"""
import torch
import torch.nn.functional as F


def advect(z, disp):
    """One semi-Lagrangian step. z: (B, C, H, W); disp: (B, 2, H, W) pixels per step.

    The pixel coordinates come from cumulative sums rather than Python ints of the shape, so the same
    function traces into an ONNX graph with dynamic tile sizes (model/onnx_export.py uses it)."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        z32 = z.float()
        d = disp.float()
        xs = torch.cumsum(torch.ones_like(d[0, 0, 0, :]), 0) - 1.0
        ys = torch.cumsum(torch.ones_like(d[0, 0, :, 0]), 0) - 1.0
        sx = 2.0 / torch.clamp(xs[-1:], min=1.0)
        sy = 2.0 / torch.clamp(ys[-1:], min=1.0)
        gx = (xs.view(1, 1, -1) - d[:, 0]) * sx - 1.0
        gy = (ys.view(1, -1, 1) - d[:, 1]) * sy - 1.0
        grid = torch.stack([gx, gy], dim=-1)
        out = F.grid_sample(z32, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(z.dtype)


def roll_forward(z0, disps, each_step=None):
    """Z_0 = z0, Z_{j+1} = advect(Z_j, d_j). disps: (B, N, 2, H, W). Returns list of N+1 tensors.
    ``each_step()``, optional, is called before every step (a cancel check may raise there)."""
    out = [z0]
    for j in range(disps.shape[1]):
        if each_step is not None:
            each_step()
        out.append(advect(out[-1], disps[:, j]))
    return out


def roll_backward(z1, disps, each_step=None):
    """Backward in time from Z_N = z1 with negated fields: Z_j = advect(Z_{j+1}, −d_j).
    Returns list of N+1 tensors indexed by time (index 0 = earliest); ``each_step`` as roll_forward's."""
    n = disps.shape[1]
    out = [None] * (n + 1)
    out[n] = z1
    for j in range(n - 1, -1, -1):
        if each_step is not None:
            each_step()
        out[j] = advect(out[j + 1], -disps[:, j])
    return out


def compose_forward(z0, disps, each_step=None):
    """The frames of ``roll_forward`` with each frame sampled from ``z0`` once: the departure-point
    offsets are advected step by step (they are as smooth as the fields, so bilinear resampling barely
    changes them) and the image is interpolated a single time.  Repeated bilinear resampling of the
    image over N steps smooths its peaks (a small radar cell loses a third of its maximum in 12 steps);
    composing the trajectory keeps them.  disps: (B, N, 2, H, W).  Returns a list of N+1 tensors;
    ``each_step`` as roll_forward's."""
    out, off = [z0], None
    for j in range(disps.shape[1]):
        if each_step is not None:
            each_step()
        d = disps[:, j].float()
        off = -d if off is None else advect(off, d) - d      # off_{j+1}(x) = off_j(x − d_j) − d_j
        out.append(advect(z0, -off))                          # z0(x + off(x))
    return out


def compose_backward(z1, disps, each_step=None):
    """``roll_backward`` with each frame sampled from ``z1`` once (see compose_forward)."""
    n = disps.shape[1]
    out = [None] * (n + 1)
    out[n] = z1
    off = None
    for j in range(n - 1, -1, -1):
        if each_step is not None:
            each_step()
        d = disps[:, j].float()
        off = d if off is None else advect(off, -d) + d       # off_j(x) = off_{j+1}(x + d_j) + d_j
        out[j] = advect(z1, -off)
    return out


def backward_fields(disp, steps):
    """The fields the backward rollout reads: ``disp`` (B, N, 2, H, W), or, where the start has per-step fields
    for each rollout (``steps`` (B, N, 4, H, W): forward (x, y), backward (x, y); rigid_pieces.Pieces.step_fields),
    ``disp`` with the forward ones swapped for the backward ones (the learned residual, if any, kept)."""
    if steps is None or steps.shape[2] == 2:
        return disp
    return disp - steps[:, :, :2].float() + steps[:, :, 2:4].float()


def rollouts(sample_once):
    """The (forward, backward) pair of rollouts: composed trajectories or step-by-step resampling."""
    return (compose_forward, compose_backward) if sample_once else (roll_forward, roll_backward)


def with_ring(x0, x1, occlusion):
    """With ``occlusion``, append a channel of ones with a zero rim to both ends: it travels with the
    content, and where it arrives < 1 the departure point lay outside the image (border inflow, not data)."""
    if not occlusion:
        return x0, x1
    ring = torch.zeros_like(x0[:, :1], dtype=torch.float32)
    ring[..., 1:-1, 1:-1] = 1.0
    return torch.cat([x0.float(), ring], 1), torch.cat([x1.float(), ring], 1)


def with_coords(x0, x1, stretch):
    """With ``stretch``, append two channels holding each pixel's own column and row to both ends: carried
    along the trajectories they give, at every frame, where each pixel's content came from (bilinear
    sampling reproduces a linear ramp exactly), hence how much the content was stretched on the way."""
    if not stretch:
        return x0, x1
    ones = torch.ones_like(x0[:, :1], dtype=torch.float32)
    cols = torch.cumsum(ones, 3) - 1.0
    rows = torch.cumsum(ones, 2) - 1.0
    return torch.cat([x0.float(), cols, rows], 1), torch.cat([x1.float(), cols, rows], 1)


def blend_inputs(x0, x1, occlusion, stretch):
    """Both ends with the channels time_blend reads, in its order: the content, with_ring's ring
    (``occlusion``) and with_coords' coordinates (``stretch``)."""
    return with_coords(*with_ring(x0, x1, occlusion), stretch)


def data_mask(valid):
    """The pair's validity (B, 1, H, W), 1 = data, made one pixel narrower (bilinear sampling within a pixel
    of a gap reads its fill): time_blend reads it at each trajectory's departure point, so a trajectory that
    began in a gap of the data (no radar coverage, a masked coast) counts as one from outside the image."""
    return 1.0 - F.max_pool2d(1.0 - valid.float(), 3, stride=1, padding=1)


def kept_area(coords, border=1.0, seen=None):
    """Area ratio (departure area / pixel area) of the map x → coords(x), clamped to [0, 1]: below 1 the
    content at x was stretched out of a smaller area, as where pieces drift apart and open water appears
    between them: one end's trajectories pull the piece across the gap, the other end's saw the gap.
    Where the departure point lies outside the image (inflow: the border value read again, no area at
    all) the weight is ``border`` instead, a float or a (B, 1, 1, 1) tensor: 1 blends both ends there
    as inside, 0 leaves it to the other end, whose trajectory came from inside (fieldinit.border_weight
    chooses it per pair).  ``seen`` (optional, (B, 1, H, W)): data_mask read at the departure points, below
    1 where the departure point lay in a gap of the data, weighted like the outside."""
    from .filters import central_differences
    dx, dy = central_differences(coords)                  # ∂(col, row)/∂x, ∂(col, row)/∂y
    det = dx[:, :1] * dy[:, 1:2] - dy[:, :1] * dx[:, 1:2]
    cols, rows = coords[:, :1].float(), coords[:, 1:2].float()
    last_col = torch.ones_like(cols[0, 0, 0, :]).sum() - 1.0   # W − 1 and H − 1 as tensors (ONNX: any size)
    last_row = torch.ones_like(rows[0, 0, :, 0]).sum() - 1.0
    # how far the departure point lies inside the image: outside it is clamped to the edge (0 px); the
    # weight goes from ``border`` to the area ratio between 0.5 and 1.5 px, continuously, so that a
    # rounding error in the trajectory cannot switch it (torch and ONNX agree)
    inside = torch.minimum(torch.minimum(cols, rows), torch.minimum(last_col - cols, last_row - rows))
    beyond = (1.5 - inside).clamp(0.0, 1.0)
    if seen is not None:
        beyond = torch.maximum(beyond, (1.0 - seen.float()).clamp(0.0, 1.0))
    return beyond * border + (1.0 - beyond) * det.clamp(0.0, 1.0)


def sample_at(img, coords):
    """``img`` (B, C, H, W) sampled bilinearly at the pixel positions ``coords`` (B, 2, H, W: column, row),
    the border value outside (advect's sampling, so it traces into ONNX for any size)."""
    ones = torch.ones_like(coords[:, :1], dtype=torch.float32)
    own = torch.cat([torch.cumsum(ones, 3) - 1.0, torch.cumsum(ones, 2) - 1.0], 1)
    return advect(img, own - coords.float())


def ends_kept(fwd, bwd):
    """How much of its area each end's content keeps over the whole interval (kept_area, neutral outside):
    X0's at its positions at t1 (``fwd``'s last frame) and X1's at its positions at t0 (``bwd``'s first),
    from the coordinate channels of blend_inputs; time_blend reads them where the content goes."""
    return kept_area(fwd[-1][:, -2:]), kept_area(bwd[0][:, -2:])


def time_blend(fwd, bwd, t, occlusion, stretch=False, border=1.0, seen=None, ends=None, several=0.0,
               squared=False):
    """Blend at time t of what was advected forward from t0 and backward from t1.  With ``stretch`` the
    last two channels are with_coords' coordinates and each end is weighted by its kept_area (where one
    end's content was stretched, the other end's is trusted; ``border``: kept_area's weight of an end
    whose trajectory began outside the image, or, given ``seen`` = data_mask of the pair, in a gap of the
    data; it is read at the departure points, not carried along); with ``occlusion`` the last (remaining)
    channel is with_ring's ring, whose drop lowers that end's weight (the other end saw the content).
    ``ends`` (ends_kept's pair) with ``several`` (0..1, a float or a (B, 1, 1, 1) tensor): each end's weight
    is also at most the area its content keeps over the *whole* interval (with ``squared``, its square),
    read where that content goes
    (X0's at the point the backward trajectory reaches at t1, X1's at the forward one's at t0).  Where
    pieces drift apart, a smooth motion tears the content of the gap-to-be apart only gradually: early
    on, the area kept so far is still near 1 and the stretched piece fills the crack that is opening;
    the whole interval's stretch says already then that this content will not stay together."""
    if not occlusion and not stretch:
        return (1 - t) * fwd + t * bwd
    wf = (1 - t) * torch.ones_like(fwd[:, :1], dtype=torch.float32)
    wb = t * torch.ones_like(bwd[:, :1], dtype=torch.float32)
    if stretch:
        cf, cb = fwd[:, -2:], bwd[:, -2:]
        fwd, bwd = fwd[:, :-2], bwd[:, :-2]
        # what is read at each end's departure points, in one sampling each: the data mask, and the other
        # end's whole-interval kept area (X1's is a map at t0 positions, X0's at t1)
        at_f = [m for m in (seen, None if ends is None else ends[1]) if m is not None]
        at_b = [m for m in (seen, None if ends is None else ends[0]) if m is not None]
        rf = sample_at(torch.cat(at_f, 1), cf) if at_f else None
        rb = sample_at(torch.cat(at_b, 1), cb) if at_b else None
        sf, sb = (rf[:, :1], rb[:, :1]) if seen is not None else (None, None)
        kf, kb = kept_area(cf, border, sf), kept_area(cb, border, sb)
        if ends is not None:
            # squared (the accurate mode's ends_squared): an end whose content is torn apart is trusted
            # less than in proportion, else the pieces stretched across an opening crack leave a veil of
            # ice there (bench floe: the ice 1.096 x the truth's at the worst lead; squared 1.052)
            ef, eb = rb[:, -1:], rf[:, -1:]
            if squared:
                ef, eb = ef * ef, eb * eb
            kf = kf + several * (torch.minimum(kf, ef) - kf)
            kb = kb + several * (torch.minimum(kb, eb) - kb)
        wf = wf * kf
        wb = wb * kb
    if occlusion:
        wf = wf * fwd[:, -1:].clamp(0, 1)
        wb = wb * bwd[:, -1:].clamp(0, 1)
        fwd, bwd = fwd[:, :-1], bwd[:, :-1]
    wf = wf + 1e-3 * (1 - t)
    wb = wb + 1e-3 * t
    return (wf * fwd + wb * bwd) / (wf + wb)
