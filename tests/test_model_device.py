"""The GPU recipe (bf16 autocast, channels-last, losses read back every k iterations) run on the CPU, so
its code is exercised where there is no card; and out-of-memory turned into a clear error."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model.device import settings, out_of_memory_as_error, CUDA_SYNC_EVERY  # noqa: E402
from model.inference import TorchTileRunner, generate_frames, advection_fields  # noqa: E402
from model.training import train_pair  # noqa: E402
from test_model_training import N, cfg, scene, _check_frames, _threads  # noqa: E402,F401 (autouse fixture)


def test_settings_defaults_and_overrides():
    cpu = torch.device("cpu")
    s = settings(cpu)
    assert (s.bf16, s.channels_last, s.sync_every) == (False, False, 1)
    s = settings(cpu, "bf16", True, 7)
    assert (s.bf16, s.channels_last, s.sync_every) == (True, True, 7)
    x = torch.zeros(2, 3, 8, 8)
    assert s.memory_format(x).is_contiguous(memory_format=torch.channels_last)
    with s.autocast():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
        y = torch.nn.functional.conv2d(x, torch.zeros(4, 3, 3, 3))
    assert y.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        settings(cpu, "fp16")
    if torch.cuda.is_available():
        g = settings(torch.device("cuda"))
        assert g.channels_last and g.sync_every == CUDA_SYNC_EVERY


def test_gpu_recipe_on_cpu_trains_and_infers_right():
    d = (6.0, -4.0)
    truth = [scene((d[0] * j / N, d[1] * j / N)) for j in range(N + 1)]
    x0, x1 = truth[0], truth[-1]
    seen, lines = [], []
    r = train_pair(x0, x1, config=cfg(iterations=30, log_every=1), seed=0, device="cpu", precision="bf16",
                   channels_last=True, sync_every=7, progress=lambda i, n, p: seen.append((i, p["loss"])),
                   log=lines.append)
    assert r.figures["precision"] == "bf16" and r.figures["channels_last"] is True
    assert "on cpu (bf16 autocast, channels-last)" in lines[-1], lines
    # losses reach the host in batches of 7 (and at the end), all of them, as floats
    assert [i for i, _ in seen] == [7, 14, 21, 28, 30]
    assert [h["iteration"] for h in r.history] == list(range(1, 31))
    assert all(isinstance(h["loss"], float) and np.isfinite(h["loss"]) for h in r.history)
    # the model comes back on the CPU in the default memory format, its weights in fp32
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in r.model.parameters())
    with TorchTileRunner(r.model, "cpu", precision="bf16") as runner:
        out = generate_frames(runner, x0, x1, tile=64)
        f = advection_fields(runner, x0, x1).sum(axis=0)
    assert out.dtype == np.float32
    _check_frames(out, truth, x0, x1, bound=0.015, linear_ratio=0.25)
    m = x0[0] > 0.3
    u, v = f[0][m].mean(), f[1][m].mean()
    assert abs(np.hypot(u, v) / np.hypot(*d) - 1) < 0.1, (u, v)


def test_gpu_recipe_on_cpu_paper_mode_full_network():
    """Paper mode runs encoder, U-nets and decoder under bf16 + channels-last: the loss must stay finite
    and go down from where it started."""
    x0, x1 = scene(), scene((3.0, 1.0))
    r = train_pair(x0, x1, config=cfg("paper", iterations=40, lr=1e-3), seed=0, device="cpu",
                   precision="bf16", channels_last=True, sync_every=10)
    losses = [h["loss"] for h in r.history]
    assert len(losses) == 40 and np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses
    with TorchTileRunner(r.model, "cpu", precision="bf16") as runner:
        out = generate_frames(runner, x0, x1, tile=64)
    assert out.shape == (N + 1,) + x0.shape and np.isfinite(out).all()


def test_out_of_memory_becomes_a_clear_error():
    cpu = torch.device("cpu")
    with pytest.raises(RuntimeError, match="CPU out of memory during training; try a smaller BATCH_SIZE") as e:
        with out_of_memory_as_error("training", cpu):
            torch.empty(2 ** 45, dtype=torch.float32)   # 128 TiB: the real allocator refuses it
    assert "allocate" in str(e.value.__cause__)
    # the message torch gives where a tensor exceeds a CUDA kernel's 32-bit indexing (seen on an H200 with
    # 20000 patches of 256²) says what to reduce too
    with pytest.raises(RuntimeError, match="GPU batch too large for one kernel during training.*try a "
                                           "smaller BATCH_SIZE"):
        with out_of_memory_as_error("training", torch.device("cuda")):
            raise RuntimeError("input tensor must fit into 32-bit index math")
    with pytest.raises(RuntimeError, match="GPU batch too large for one kernel during training"):
        with out_of_memory_as_error("training", torch.device("cuda")):   # the convolutions' check
            raise RuntimeError("Expected canUse32BitIndexMath(input) && canUse32BitIndexMath(output) to be true, "
                               "but got false.")
    with pytest.raises(ValueError, match="unrelated"):         # anything else passes through untouched
        with out_of_memory_as_error("training", cpu):
            raise ValueError("unrelated")


def test_deterministic_mode_and_levers_on_cpu():
    """deterministic=True gives the same weights for the same seed and restores torch's flags; the fused
    Adam lever trains to the same losses as the plain one (the same update, one kernel)."""
    x0, x1 = scene(), scene((3.0, 1.0))
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    runs = [train_pair(x0, x1, config=cfg("paper", iterations=6), seed=3, device="cpu", deterministic=True)
            for _ in range(2)]
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    a, b = runs[0].model.state_dict(), runs[1].model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and runs[0].figures["deterministic"] is True
    fused = train_pair(x0, x1, config=cfg("paper", iterations=6), seed=3, device="cpu", fused=True)
    assert fused.figures["fused"] is True
    assert np.allclose([h["loss"] for h in fused.history], [h["loss"] for h in runs[0].history], rtol=1e-4)
    with pytest.raises(ValueError, match="compile mode"):
        settings(torch.device("cpu"), compile="fastest")


def test_edge_pad_equals_replicate_padding():
    """While compiling, the convolutions pad with model/compiling.edge_pad: the same values (and gradients up
    to summation order) as the replicate padding they replace, and eager calls keep the plain op."""
    import torch.nn.functional as F
    from model.compiling import compiled_terms, edge_pad

    x = torch.randn(2, 3, 7, 9, dtype=torch.float64, requires_grad=True)
    for ph, pw in ((1, 1), (2, 2), (2, 0), (0, 1)):
        a = edge_pad(x, ph, pw)
        b = F.pad(x, (pw, pw, ph, ph), mode="replicate")
        assert torch.equal(a, b)
        g = torch.randn_like(a)
        # the edge pixels' gradients are sums over their copies, added in another order: float rounding
        assert torch.allclose(torch.autograd.grad(a, x, g)[0], torch.autograd.grad(b, x, g)[0], rtol=0, atol=1e-12)
    conv = torch.nn.Conv2d(3, 4, 5, padding=2, padding_mode="replicate").double()
    before = conv(x)
    compiled_terms(lambda t: t, conv, "default")   # patches the conv; compiles lazily (nothing runs here)
    assert "_conv_forward" in vars(conv) and torch.equal(conv(x), before)
