"""Small image filters shared by the networks and the losses (torch, shape-free so they trace to ONNX)."""
import math


def central_differences(x):
    """(∂x/∂col, ∂x/∂row) of every channel of (B, C, H, W): central differences, borders replicated
    (shape-free, so it traces to ONNX)."""
    import torch.nn.functional as F

    p = F.pad(x.float(), (1, 1, 1, 1), mode="replicate")
    return 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]), 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])


def gaussian_blur(x, sigma):
    """Separable Gaussian blur of every channel of (B, C, H, W), borders replicated."""
    import torch
    import torch.nn.functional as F

    if not sigma or sigma <= 0:
        return x
    r = max(1, int(math.ceil(3.0 * sigma)))
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    # Python constants (not tensors derived from the input), so the ONNX trace keeps a fixed kernel
    k = torch.tensor([t / sum(taps) for t in taps], dtype=torch.float32, device=x.device)
    c = int(x.shape[1])
    # fp32 and the default layout, also under bf16 autocast / channels-last (a long depthwise kernel in bf16
    # channels-last runs hundreds of times slower on the CPU, and a blur needs no low precision)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float().contiguous()
        k = k.float()
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
                        groups=c)
