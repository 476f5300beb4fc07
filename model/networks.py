"""Networks: encoder φ, U-nets (field extractor η, decoder ψ) and the whole in-between model.

U-nets: max-pool down, resize-convolution up (bilinear upsample to the skip's size, then a conv; no
transposed convolutions), skips joined by resizing and concatenating.  Any input size works.

Paper mode: η(X0) sees the first image only and, with ``coord_input`` (the paper-mode default), two more
channels holding each pixel's place in the whole image (model/patches.image_coords; training cuts them
with each patch, inference with each tile and its halo).  A convolutional η that sees only the image is
translation-equivariant: it gives the same field to the same content wherever it lies, so it cannot learn
a motion that depends on position such as a rotation (measured: 27–45° off the truth, 4–8° with them).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .filters import central_differences, gaussian_blur
from .patches import image_coords
from .advection import (backward_fields, blend_inputs, data_mask, ends_kept, kept_area, roll_backward, roll_forward,
                        rollouts, time_blend, with_coords)


def _act():
    return nn.LeakyReLU(0.2)


class Encoder(nn.Module):
    """φ: 3×3 convolutions only, leaky ReLU 0.2, image (C) → one latent channel on the same grid.

    ``skip``: φ(x) = mean of the bands + the convolutions, whose last layer starts at zero, so the latent
    starts as the image itself (paper mode, see InBetweenNet)."""

    def __init__(self, in_ch, widths, skip=False):
        super().__init__()
        layers, c = [], in_ch
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, padding_mode="replicate"), _act()]
            c = w
        layers.append(nn.Conv2d(c, 1, 3, padding=1, padding_mode="replicate"))
        self.net = nn.Sequential(*layers)
        self.skip = skip
        if skip:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)

    def forward(self, x):
        if self.skip:
            return x.mean(dim=1, keepdim=True) + self.net(x)
        return self.net(x)


class _Block(nn.Sequential):
    def __init__(self, cin, cout, k):
        p = k // 2
        super().__init__(nn.Conv2d(cin, cout, k, padding=p, padding_mode="replicate"), _act(),
                         nn.Conv2d(cout, cout, k, padding=p, padding_mode="replicate"), _act())


class UNet(nn.Module):
    def __init__(self, in_ch, out_ch, width_in, stages, bottleneck, k, zero_out=False, skip=False):
        super().__init__()
        self.skip = skip  # add the (one-channel) input to every output channel: a residual U-net
        p = k // 2
        self.inp = nn.Sequential(nn.Conv2d(in_ch, width_in, k, padding=p, padding_mode="replicate"), _act())
        self.down = nn.ModuleList()
        c = width_in
        for w in stages:
            self.down.append(_Block(c, w, k))
            c = w
        self.bottom = _Block(c, bottleneck, k)
        self.upconv = nn.ModuleList()
        self.upblock = nn.ModuleList()
        c = bottleneck
        for w in reversed(stages):
            self.upconv.append(nn.Sequential(nn.Conv2d(c, w, k, padding=p, padding_mode="replicate"), _act()))
            self.upblock.append(_Block(2 * w, w, k))
            c = w
        self.out = nn.Conv2d(c, out_ch, 1)
        if zero_out:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x):
        inp = x
        x = self.inp(x)
        skips = []
        for blk in self.down:
            x = blk(x)
            skips.append(x)
            x = F.max_pool2d(x, 2, ceil_mode=True)
        x = self.bottom(x)
        for conv, blk, skip in zip(self.upconv, self.upblock, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = conv(x)
            x = blk(torch.cat([x, skip], dim=1))
        if self.skip:
            return inp + self.out(x)
        return self.out(x)


def curl(psi):
    """(B, N, H, W) stream functions → (B, 2N, H, W) displacements (∂ψ/∂y, −∂ψ/∂x) per channel, central
    differences with replicated borders (shape-free, so it traces to ONNX)."""
    dx, dy = central_differences(psi)
    return torch.stack([dy, -dx], dim=2).flatten(1, 2)


class InBetweenNet(nn.Module):
    """The whole model. All tensors are normalised images (B, C, H, W).

    ``fields(x0, x1, flow)`` gives per-step pixel displacements (B, N, 2, H, W);
    ``frames(...)`` gives the N+1 normalised frames; ``training_terms(...)`` the loss ingredients.
    """

    def __init__(self, cfg, bands):
        super().__init__()
        self.cfg = cfg
        self.bands = bands
        n = cfg.steps
        # paper mode with ``identity_start``: ψ∘φ starts as the identity (φ = band mean + zero-started
        # convolutions, ψ = latent + zero-started U-net) and the fields at zero, so training starts from
        # the image held still and every step's field gets the same first updates
        skip = cfg.mode == "paper" and getattr(cfg, "identity_start", False)
        self.uses_coords = cfg.mode == "paper" and getattr(cfg, "coord_input", False)
        # accurate mode's stretch-weighted blend takes, per pair, the border weight (fieldinit.border_weight),
        # the validity mask (a trajectory from a gap in the data counts as from outside) and whether the
        # start has several motions (advection.time_blend's ``several``), as its configuration asks
        stretch = cfg.mode != "paper" and getattr(cfg, "stretch_blend", False)
        self.uses_border = bool(stretch and getattr(cfg, "border_trust", False))
        self.uses_seen = bool(self.uses_border and getattr(cfg, "gaps_as_border", False))
        self.uses_several = bool(stretch and getattr(cfg, "whole_stretch", False))
        self.encoder = Encoder(bands, cfg.encoder_widths, skip=skip)
        if cfg.mode == "paper":
            # ``coord_input``: η also sees each pixel's place in the whole image (patches.image_coords)
            field_in = bands + (2 if self.uses_coords else 0)
        else:
            field_in = 2 * bands + (2 if cfg.flow_init else 0)
        # accurate mode: residual fields, start at exactly the flow initialisation
        per_step = 1 if getattr(cfg, "residual_form", "free") == "solenoidal" and cfg.mode != "paper" else 2
        self.field_net = UNet(field_in, per_step * n, cfg.unet_in, cfg.unet_stages, cfg.unet_bottleneck,
                              cfg.field_kernel, zero_out=(cfg.mode != "paper" or skip))
        dec_in = 1 + (bands if cfg.residual_decoder else 0)
        self.decoder = UNet(dec_in, bands, cfg.unet_in, cfg.unet_stages, cfg.unet_bottleneck,
                            cfg.decoder_kernel, zero_out=cfg.residual_decoder or skip, skip=skip)

    # -- fields --------------------------------------------------------------------------------
    def fields(self, x0, x1=None, flow=None, coords=None, steps=None):
        """Per-step displacement in pixels, (B, N, 2, H, W), plus the raw network output.  ``coords``
        (paper mode with ``coord_input``): (B, 2, H, W), the pixels' place in the whole image
        (patches.image_coords); None: ``x0`` is the whole image.  ``steps`` (accurate mode), optional:
        the start's own per-step fields (B, N, 4, H, W), the forward rollout's under the residual instead of
        ``flow`` / N each step (rigid pieces moving through each other's places: fieldinit.Start.pieces; the
        backward rollout's: advection.backward_fields); ``flow`` stays the network's input."""
        cfg = self.cfg
        b, _, h, w = x0.shape
        n = cfg.steps
        if cfg.mode == "paper":
            inp = x0
            if self.uses_coords:
                if coords is None:   # x0 is the whole image (its shape is only read here, not traced)
                    coords = torch.from_numpy(image_coords(h, w)).to(x0.device)[None].expand(b, -1, -1, -1)
                inp = torch.cat([x0, coords.to(x0.dtype)], dim=1)
            raw = self.field_net(inp).view(b, n, 2, h, w)
            disp = raw.float() * (cfg.dt * cfg.patch_size)  # [0,1]^2 spans one training patch
            return disp, raw
        inp = [x0, x1]
        if cfg.flow_init:
            inp.append(flow / 10.0)
        raw = self.residual(self.field_net(torch.cat(inp, dim=1))).view(b, n, 2, h, w).float()
        disp = raw
        if steps is not None:
            disp = disp + steps[:, :, :2].float()
        elif cfg.flow_init:
            disp = disp + (flow.float() / n).unsqueeze(1)
        return disp, raw

    def residual(self, out):
        """Accurate mode: the field net's output as residual pixels per step (B, 2N, H, W), smoothed at
        ``residual_smooth`` px.  A rough residual makes semi-Lagrangian sampling land between small
        echoes and erase them (measured on convective radar), so the learned correction is kept to the
        scale of the motion, not of the pixels.  With ``residual_form="solenoidal"`` the output is one
        stream function ψ per step (B, N, H, W) and the residual its curl (∂ψ/∂y, −∂ψ/∂x): divergence-free,
        so it can move, turn and shear the echoes but cannot gather or spread them, which is how a free
        residual fitted growth and decay at the endpoints and erased small cells in between."""
        sigma = getattr(self.cfg, "residual_smooth", 0.0)
        smooth = gaussian_blur(out.float(), sigma) * self.cfg.residual_scale
        if getattr(self.cfg, "residual_form", "free") != "solenoidal":
            return smooth
        return curl(smooth * max(1.0, float(sigma)))

    def decode(self, z, base=None):
        if self.cfg.residual_decoder:
            return base + self.decoder(torch.cat([z, base], dim=1))
        return self.decoder(z)

    # -- frames --------------------------------------------------------------------------------
    def frames(self, x0, x1, flow=None, coords=None, border=1.0, seen=None, several=0.0, steps=None):
        """Normalised frames 0..N (list), frame 0 = x0, frame N = x1 exactly.  ``border``: the blend's
        weight of an end whose trajectory began outside the image (advection.kept_area); ``seen``
        ((B, 1, H, W), with ``uses_seen``): 1 where the pair is valid, a gap counts as outside;
        ``several`` (with ``uses_several``): 1 when the start has several motions (time_blend); ``steps``:
        the start's per-step fields (fields)."""
        cfg = self.cfg
        n = cfg.steps
        disp, _ = self.fields(x0, x1, flow, coords, steps)
        back = backward_fields(disp, steps)
        z0 = self.encoder(x0)
        out = [x0]
        forward, backward = rollouts(getattr(cfg, "sample_once", False))
        if not cfg.bidirectional:
            zs = forward(z0, disp)
            for j in range(1, n):
                out.append(self.decoder(zs[j]) if not cfg.residual_decoder else self.decode(zs[j], x0))
        else:
            z1 = self.encoder(x1)
            occ = getattr(cfg, "occlusion_blend", False)
            stretch = getattr(cfg, "stretch_blend", False)
            mask = data_mask(seen) if self.uses_seen and seen is not None else None
            x0c, x1c = blend_inputs(x0, x1, occ, stretch)
            fwd = forward(torch.cat([z0, x0c], 1), disp)
            bwd = backward(torch.cat([z1, x1c], 1), back)
            with_ends = self.uses_several and (torch.is_tensor(several) or several)  # 0: they change nothing
            ends = ends_kept(fwd, bwd) if with_ends else None
            for j in range(1, n):
                mix = time_blend(fwd[j], bwd[j], j / n, occ, stretch, border, mask, ends, several,
                                 getattr(cfg, "ends_squared", False))
                z, base = mix[:, :1], mix[:, 1:]
                out.append(self.decode(z, base) if cfg.residual_decoder else self.decoder(z))
        out.append(x1)
        return out, disp

    def training_terms(self, x0, x1, flow=None, coords=None):
        """Loss ingredients: pred1 (X0 carried to t1), pred0 (X1 carried back to t0, bidirectional only),
        autoencoder pairs, raw fields and displacements, and ``inside1``/``inside0`` (accurate mode with a
        flow initialisation): masks of the pixels whose trajectory under the *initial* flow stays inside
        the patch; elsewhere the departure point lies outside the patch, where the border inflow is not
        the truth, so those pixels are left out of the loss.  The mask does not depend on the learned
        fields (a learned mask would let the fields cheat by carrying everything out of the patch)."""
        cfg = self.cfg
        disp, raw = self.fields(x0, x1, flow, coords)
        z0 = self.encoder(x0)
        z1 = self.encoder(x1)
        inside1 = inside0 = None
        forward, backward = rollouts(getattr(cfg, "sample_once", False))
        trusted = [None] * (cfg.steps + 1)
        if flow is not None:
            with torch.no_grad():
                ring = torch.zeros_like(flow[:, :1], dtype=torch.float32)
                ring[..., 1:-1, 1:-1] = 1.0
                d0 = (flow.float() / cfg.steps).unsqueeze(1).expand(-1, cfg.steps, -1, -1, -1)
                inside1 = (roll_forward(ring, d0)[-1] > 0.999).float()
                inside0 = (roll_backward(ring, d0)[0] > 0.999).float()
                if getattr(cfg, "stretch_blend", False):
                    # where the initial motion stretches one end's content (pieces drifting apart: the gap
                    # opening between them), that end's value is not evidence and the blend does not use
                    # it; the losses leave it out too, judged on the initial motion, not the learned
                    # fields (learned weights would let the fields stretch everything out of the loss)
                    c0, c1 = with_coords(ring, ring, True)
                    cf, cb = forward(c0[:, 1:], d0), backward(c1[:, 1:], d0)
                    kf = [(kept_area(c) > 0.5).float() for c in cf]
                    kb = [(kept_area(c) > 0.5).float() for c in cb]
                    inside1, inside0 = inside1 * kf[-1], inside0 * kb[0]
                    trusted = [f * b for f, b in zip(kf, kb)]
        if not cfg.bidirectional:
            zN = forward(z0, disp)[-1]
            pred1 = self.decode(zN, x0) if cfg.residual_decoder else self.decoder(zN)
            ae0 = self.decode(z0, x0) if cfg.residual_decoder else self.decoder(z0)
            if self.encoder.skip:
                # the latent term |Z_N − φ(X1)|² checks the fields only: through φ it is lowered by
                # flattening the latent instead of moving it (measured on a rotation: latent std 0.07
                # against 0.42 for the image, frames 1.27x linear's MAE; 0.51x with φ held fixed here;
                # FMI radar crop MAE 5.51 -> 5.14 dBZ)
                ae = [(ae0, x0, None), (roll_forward(z0.detach(), disp)[-1], z1.detach(), inside1)]
            else:
                ae = [(ae0, x0, None), (zN, z1, inside1)]
            return dict(pred1=pred1, pred0=None, ae=ae, raw=raw, disp=disp, inside1=inside1, inside0=None)
        c = x0.shape[1]
        fwd_all = forward(torch.cat([z0.float(), x0.float()], 1), disp)
        bwd_all = backward(torch.cat([z1.float(), x1.float()], 1), disp)
        fwd, bwd = fwd_all[-1], bwd_all[0]
        # forward/backward consistency at intermediate steps: X0 carried to t_j and X1 carried back
        # to t_j should agree where nothing grows or decays (a self-supervised signal at the times
        # that have no truth; it sharpens the blend)
        cons = [(fwd_all[j][:, 1:1 + c], bwd_all[j][:, 1:1 + c], trusted[j]) for j in range(1, cfg.steps)]
        pred1 = self.decode(fwd[:, :1], fwd[:, 1:1 + c])
        pred0 = self.decode(bwd[:, :1], bwd[:, 1:1 + c])
        ae = [(self.decode(z0, x0), x0, None), (fwd[:, :1], z1, inside1), (bwd[:, :1], z0, inside0)]
        return dict(pred1=pred1, pred0=pred0, ae=ae, raw=raw, disp=disp, inside1=inside1, inside0=inside0,
                    cons=cons)
