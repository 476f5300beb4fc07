"""Device choice: ``auto`` (CUDA when available), ``cpu`` or ``cuda``; autocast/channels-last on CUDA."""
import contextlib


def resolve_device(device="auto", log=None):
    import torch

    name = (device or "auto").lower()
    if name not in ("auto", "cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if name == "auto":
        if torch.cuda.is_available():
            dev = torch.device("cuda")
            if log:
                log(f"Using CUDA device: {torch.cuda.get_device_name(dev)}")
        else:
            dev = torch.device("cpu")
            if log:
                log("CUDA not available, using CPU")
        return dev
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was requested but CUDA is not available on this machine "
                             "(choose 'auto' or 'cpu')")
        dev = torch.device(name)
        if log:
            log(f"Using CUDA device: {torch.cuda.get_device_name(dev)}")
        return dev
    if log:
        log("Using CPU")
    return torch.device("cpu")


def autocast(dev):
    """bf16 autocast on CUDA (when supported), nothing on CPU. Advection keeps its grid in fp32."""
    import torch

    if dev.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def oom_message(what="training"):
    return (f"GPU out of memory during {what}; try a smaller BATCH_SIZE or PATCH_SIZE "
            "(or a smaller tile for inference), or DEVICE=cpu")
