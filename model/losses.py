"""Loss terms, masked by valid pixels. Means, not sums, so the λ weights do not depend on patch size."""

def masked_mse(a, b, mask):
    """mask (B, 1, H, W) float; mean over valid pixels and channels."""
    d = (a.float() - b.float()) ** 2 * mask
    return d.sum() / (mask.sum() * a.shape[1]).clamp(min=1.0)


def masked_robust(a, b, mask, eps=0.01):
    """Charbonnier difference sqrt(d² + eps²) − eps (about |d| beyond eps): unlike the square it does
    not make a half-matched echo cheaper to erase than to move."""
    import torch

    d = torch.sqrt((a.float() - b.float()) ** 2 + eps * eps) - eps
    d = d * mask
    return d.sum() / (mask.sum() * a.shape[1]).clamp(min=1.0)


SCALES = ((0.0, 1.0), (4.0, 2.0), (12.0, 4.0))  # (Gaussian sigma in px, weight)


def masked_multiscale(a, b, mask, scales=SCALES):
    """masked_robust at several Gaussian blurs of both images, weighted towards the coarse ones.  At
    one scale, a small echo a few pixels off costs twice its mass (missed here, false there) and an
    erased one only once, so erasing is the cheaper answer; at the coarse scales the displaced echo
    costs little and the erased one its whole mass.  With these weights a 1.5 px cell moved by up to
    5 px costs less than the same cell erased (tests/test_model_advection.py)."""
    from .filters import gaussian_blur

    total = 0.0
    for s, weight in scales:
        total = total + weight * _at_scale(a, b, mask, s, gaussian_blur)
    return total / sum(weight for _, weight in scales)


def _at_scale(a, b, mask, s, gaussian_blur):
    if s <= 0:
        return masked_robust(a, b, mask)
    m = gaussian_blur(mask, s)
    inner = mask * (m > 0.99).float()
    return masked_robust(gaussian_blur(a.float() * mask, s), gaussian_blur(b.float() * mask, s), inner)


def magnitude(raw):
    """λ_mag term: mean |W|² over steps and pixels (raw: (B, N, 2, H, W))."""
    return (raw.float() ** 2).sum(dim=2).mean()


def smoothness(raw):
    """λ_smooth term: mean |W_t − W_{t−1}|² over consecutive steps."""
    if raw.shape[1] < 2:
        return raw.new_zeros(())
    return ((raw[:, 1:] - raw[:, :-1]).float() ** 2).sum(dim=2).mean()


def image_differences(cfg):
    """The differences used for the dynamics (endpoint) and consistency terms, by ``cfg.loss``.  The
    consistency term compares N−1 pairs of intermediate states, so it takes the one-scale robust
    difference: at every scale it would cost several times the rest of the iteration."""
    if getattr(cfg, "loss", "mse") == "multiscale":
        return masked_multiscale, masked_robust
    return masked_mse, masked_mse


def total_loss(terms, target0, target1, mask0, mask1, cfg):
    diff, cons_diff = image_differences(cfg)
    m1 = mask1 * terms["inside1"] if terms.get("inside1") is not None else mask1
    dyn = diff(terms["pred1"], target1, m1)
    if terms["pred0"] is not None:
        m0 = mask0 * terms["inside0"] if terms.get("inside0") is not None else mask0
        dyn = 0.5 * (dyn + diff(terms["pred0"], target0, m0))
    ae = 0.0
    both = mask0 * mask1
    for a, b, inside in terms["ae"]:
        ae = ae + masked_mse(a, b, mask0 if inside is None else both * inside)
    cons = 0.0
    if terms.get("cons") and cfg.lambda_cons > 0:
        mc = both
        if terms.get("inside1") is not None:
            mc = mc * terms["inside1"] * terms["inside0"]
        cons = sum(cons_diff(a, b, mc if w is None else mc * w) for a, b, w in terms["cons"]) / len(terms["cons"])
    mag = magnitude(terms["raw"])
    smo = smoothness(terms["raw"])
    loss = dyn + cfg.lambda_ae * ae + cfg.lambda_mag * mag + cfg.lambda_smooth * smo + cfg.lambda_cons * cons
    # detached tensors, not floats: a float() here would wait for the GPU every iteration;
    # train_pair reads them back in batches on CUDA (every iteration on CPU)
    terms = {"loss": loss, "dynamics": dyn, "autoencoder": ae, "magnitude": mag, "smoothness": smo,
             "consistency": cons}
    return loss, {k: (v.detach() if hasattr(v, "detach") else float(v)) for k, v in terms.items()}
