"""Device choice: ``auto`` (CUDA when available), ``cpu`` or ``cuda``, and how to run on it.

``Settings`` bundles what differs between a CPU and a GPU run: bf16 autocast, channels-last memory
format, how often the training loop reads its losses back to the host, and two levers that are off
until measured on a card (bench/gpu_check.py toggles them): the fused Adam kernel and torch.compile.  ``auto`` picks the GPU
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
    fused: bool = False     # training: Adam's fused kernel (one launch for all parameters)
    compile: str = ""       # training: torch.compile mode of the loss terms ("" = eager; "reduce-overhead"
                            # = with CUDA graphs)

    def autocast(self):
        import torch

        if self.bf16:
            return torch.autocast(self.dev.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def memory_format(self, x):
        import torch

        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def settings(dev, precision="auto", channels_last=None, sync_every=None, fused=None, compile=None):
    """``precision``: ``auto`` (bf16 on a CUDA card that supports it, else fp32), ``bf16`` or ``fp32``;
    ``channels_last``: None = on CUDA; ``sync_every``: None = CUDA_SYNC_EVERY on CUDA, 1 on CPU;
    ``fused``: None = off (not yet measured on a card); ``compile``: None or "" = eager, else a
    torch.compile mode (COMPILE_MODES)."""
    import torch

    cuda = dev.type == "cuda"
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"unknown precision {precision!r}; choose auto, bf16 or fp32")
    bf16 = precision == "bf16" or (precision == "auto" and cuda and torch.cuda.is_bf16_supported())
    if (compile or "") not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {compile!r}; choose one of {', '.join(map(repr, COMPILE_MODES))}")
    return Settings(dev=dev, bf16=bf16, channels_last=cuda if channels_last is None else bool(channels_last),
                    sync_every=max(1, int(sync_every or (CUDA_SYNC_EVERY if cuda else 1))),
                    fused=bool(fused), compile=compile or "")


@contextlib.contextmanager
def deterministic_algorithms(on=True):
    """Inside the block torch uses deterministic kernels where it has them (cuDNN without autotuning,
    cuBLAS with a fixed workspace); an op that has none on this device warns instead of failing (on CUDA
    the backward passes of grid_sample and bilinear upsampling accumulate with atomics), so the same seed
    gives the same model on a CPU and, up to those ops' summation order, on a GPU.  Restores the flags."""
    if not on:
        yield
        return
    import os
    import torch

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS makes its handle
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


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


def is_too_large_for_kernels(exc):
    """A tensor over 2**31 elements, which some CUDA kernels refuse before any allocation: the replicate
    padding's "input tensor must fit into 32-bit index math" (seen on an H200 with 20000 patches of 256²,
    2026-11-27) and the convolutions' "Expected canUse32BitIndexMath(input) ..." check."""
    msg = str(exc)
    return isinstance(exc, RuntimeError) and ("32-bit index math" in msg or "canUse32BitIndexMath" in msg)


def too_large_message(what="training"):
    return (f"GPU batch too large for one kernel during {what} (a tensor of over 2^31 values); try a smaller "
            "BATCH_SIZE or PATCH_SIZE (or a smaller tile for inference)")


@contextlib.contextmanager
def out_of_memory_as_error(what, dev=None):
    """Turn an allocation failure inside the block, or a batch too large for the GPU's kernels, into a
    RuntimeError that says what to reduce (and free the CUDA cache), so the caller reports it instead of
    crashing with an allocator trace."""
    try:
        yield
    except Exception as e:
        oom, large = is_out_of_memory(e), is_too_large_for_kernels(e)
        if not (oom or large):
            raise
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise RuntimeError(oom_message(what, dev) if oom else too_large_message(what)) from e
