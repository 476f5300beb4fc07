"""Small image filters shared by the networks and the losses (torch, shape-free so they trace to ONNX)."""
import math


def gaussian_blur(x, sigma):
    """Separable Gaussian blur of every channel of (B, C, H, W), borders replicated."""
    import torch
    import torch.nn.functional as F

    if not sigma or sigma <= 0:
        return x
    r = max(1, int(math.ceil(3.0 * sigma)))
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    # Python constants (not tensors derived from the input), so the ONNX trace keeps a fixed kernel
    k = torch.tensor([t / sum(taps) for t in taps], dtype=x.dtype, device=x.device)
    c = int(x.shape[1])
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
