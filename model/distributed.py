"""Training on several GPUs or machines: ``torchrun`` + PyTorch's DistributedDataParallel (DDP).

    torchrun --nproc_per_node=4 scripts/train_distributed.py FIRST.tif SECOND.tif --out pair.inbetween \\
        --preset paper-example-1
    # two machines, 4 GPUs each (run on both, --node_rank 0 and 1):
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \\
        scripts/train_distributed.py FIRST.tif SECOND.tif --out pair.inbetween --preset paper-example-1

torchrun starts one process (rank) per GPU and sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous
variables; ``init()`` reads them, pins the process to GPU LOCAL_RANK (NCCL), or uses gloo on CPU, and
initialises the process group.  ``train_pair`` then (``training_run``) wraps the network in DDP: every
rank holds the whole pair on its own device, cuts its own patches with its own sampling seed, and DDP
averages the gradients, so one iteration sees ``world_size × batch_size`` patches while the weights stay
identical on every rank (same initialisation on every rank, and DDP broadcasts rank 0's at wrap time).
The learning rate is not rescaled.  Only rank 0 writes the model file (``is_main()``).

Without torchrun (no process group) nothing here changes the training: ``training_run`` hands back the
network's own ``training_terms`` and the caller's seed.
"""
import os
from dataclasses import dataclass


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "auto"     # what to pass to train_pair(device=...)
    backend: str = ""
    active: bool = False     # a process group is initialised


def launched_by_torchrun():
    """True when torchrun (or another env:// launcher) set this process's rank and world size."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_active():
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank():
    import torch.distributed as dist

    return dist.get_rank() if is_active() else 0


def world_size():
    import torch.distributed as dist

    return dist.get_world_size() if is_active() else 1


def is_main():
    """Rank 0 (or no distribution): the process that writes files and prints."""
    return rank() == 0


def init(device="auto", backend=None):
    """Initialise the process group from torchrun's environment; without it, a no-op DistInfo.

    ``device``: auto (a GPU per local rank when CUDA is there, else CPU), cuda or cpu.  ``backend``:
    nccl for GPUs, gloo for CPU unless given."""
    import torch
    import torch.distributed as dist

    if not launched_by_torchrun():
        return DistInfo(device=device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    name = (device or "auto").lower()
    use_cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but CUDA is not available on this machine")
        n = torch.cuda.device_count()
        if local >= n:
            raise RuntimeError(f"local rank {local} has no GPU of its own (this machine has {n}); "
                               f"start at most {n} processes per node (torchrun --nproc_per_node={n})")
        torch.cuda.set_device(local)
        dev = f"cuda:{local}"
    else:
        dev = "cpu"
    backend = backend or ("nccl" if use_cuda else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local, device=dev,
                    backend=dist.get_backend(), active=True)


def finish():
    """Wait for every rank, then tear the process group down (call once at the end)."""
    import torch.distributed as dist

    if is_active():
        dist.barrier()
        dist.destroy_process_group()


def sampling_seed(seed, rank_=None):
    """Rank r's patch-sampling seed: rank 0 keeps ``seed`` (a one-process run samples as without torchrun),
    the others get distinct streams."""
    r = rank() if rank_ is None else rank_
    return int(seed) + 1_000_003 * int(r)


@dataclass
class TrainingRun:
    """What train_pair needs from the distribution: ``terms(a, b, flow)`` and the sampling ``seed``."""
    terms: object
    seed: int
    rank: int = 0
    world_size: int = 1
    ddp: object = None


def _terms_module(net):
    import torch

    class _Terms(torch.nn.Module):
        # DDP synchronises gradients of what runs through forward(); training_terms is not forward
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, a, b, flow=None, coords=None):
            return self.net.training_terms(a, b, flow, coords)

    return _Terms(net)


def training_run(model, params, seed, distributed=None, log=None):
    """How train_pair steps the network.

    ``distributed``: None = DDP when a process group is initialised (under torchrun), else the plain
    network; False = never; True = DDP, and an error when there is no process group.  ``params`` are the
    parameters the optimiser trains; the others are frozen (requires_grad False), so that neither
    autograd nor DDP spends time on gradients nobody uses."""
    active = is_active()
    if distributed is None:
        distributed = active
    if distributed and not active:
        raise RuntimeError("distributed training was requested but no process group is initialised: "
                           "launch with torchrun and call model.distributed.init() first")
    # weights the optimiser does not train (accurate mode's φ and ψ by default) need no gradient: the
    # backward pass skips their weight gradients (same values for the others) and DDP does not sync them
    trainable = {id(p) for p in params}
    for p in model.parameters():
        if id(p) not in trainable:
            p.requires_grad_(False)
    if not distributed:
        return TrainingRun(terms=model.training_terms, seed=int(seed))
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    dev = next(model.parameters()).device
    if dev.type == "cuda" and dev.index != torch.cuda.current_device():
        raise RuntimeError(f"the model is on {dev} but this rank's GPU is cuda:{torch.cuda.current_device()}; "
                           "call model.distributed.init() before training and pass its device")
    # the buffers (normalisation) are constants: synced once at wrap time, not before every forward
    import inspect
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
               else {"broadcast_buffers": False})
    ddp = DDP(_terms_module(model), device_ids=[dev.index] if dev.type == "cuda" else None,
              gradient_as_bucket_view=True, **no_sync)
    r, n = rank(), world_size()
    if log and r == 0:
        log(f"DistributedDataParallel over {n} process(es) ({ddp.process_group.name()} backend); "
            f"{n} x batch per iteration")
    return TrainingRun(terms=ddp, seed=sampling_seed(seed, r), rank=r, world_size=n, ddp=ddp)


def weights_digest(model):
    """sha256 of the state dict (names, dtypes, shapes, bytes), to compare ranks or files."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().to("cpu").contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def check_in_sync(model):
    """Every rank's weights_digest (a list, index = rank); raises when they differ."""
    import torch.distributed as dist

    d = weights_digest(model)
    if not is_active():
        return [d]
    all_d = [None] * dist.get_world_size()
    dist.all_gather_object(all_d, d)
    if len(set(all_d)) != 1:
        raise RuntimeError(f"the weights differ between ranks after training: {all_d}")
    return all_d
