"""Device choice: ``auto`` (CUDA when available), ``cpu`` or ``cuda``, and how to run on it.

``Settings`` bundles what differs between a CPU and a GPU run: bf16 autocast, channels-last memory
format, and how often the training loop reads its losses back to the host.  ``auto`` picks the GPU
recipe on CUDA and plain fp32 / every iteration on CPU; each can be forced either way, so the GPU
recipe's code runs (and is tested) on a CPU too."""
import contextlib
from dataclasses import dataclass

CUDA_SYNC_EVERY = 50  # iterations between reads of the losses back to the host, on CUDA


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


@dataclass(frozen=True)
class Settings:
    dev: object             # torch.device
    bf16: bool              # bf16 autocast (the advection grid stays fp32, see model/advection.py)
    channels_last: bool     # weights and patches in channels-last memory format
    sync_every: int         # training: iterations between loss read-backs

    def autocast(self):
        import torch

        if self.bf16:
            return torch.autocast(self.dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def memory_format(self, x):
        import torch

        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def settings(dev, precision="auto", channels_last=None, sync_every=None):
    """``precision``: ``auto`` (bf16 on a CUDA card that supports it, else fp32), ``bf16`` or ``fp32``;
    ``channels_last``: None = on CUDA; ``sync_every``: None = CUDA_SYNC_EVERY on CUDA, 1 on CPU."""
    import torch

    cuda = dev.type == "cuda"
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"unknown precision {precision!r}; choose auto, bf16 or fp32")
    bf16 = precision == "bf16" or (precision == "auto" and cuda and torch.cuda.is_bf16_supported())
    return Settings(dev=dev, bf16=bf16, channels_last=cuda if channels_last is None else bool(channels_last),
                    sync_every=max(1, int(sync_every or (CUDA_SYNC_EVERY if cuda else 1))))


def is_out_of_memory(exc):
    """A failed allocation: CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    msg = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in msg or "not enough memory" in msg)


def oom_message(what="training", dev=None):
    where = "CPU" if dev is not None and dev.type == "cpu" else "GPU"
    hint = "" if where == "CPU" else ", or DEVICE=cpu"
    return (f"{where} out of memory during {what}; try a smaller BATCH_SIZE or PATCH_SIZE "
            f"(or a smaller tile for inference){hint}")


@contextlib.contextmanager
def out_of_memory_as_error(what, dev=None):
    """Turn an allocation failure inside the block into a RuntimeError with oom_message (and free the
    CUDA cache), so the caller reports it instead of crashing with an allocator trace."""
    try:
        yield
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise RuntimeError(oom_message(what, dev)) from e
