"""Tests that need a CUDA card (marker ``cuda``; skipped without one).  bench/gpu_check.py runs them with
``pytest -m cuda tests/test_cuda.py`` in a plain CUDA PyTorch environment, so this file imports nothing
but numpy, torch, onnxruntime and ``model/`` (no GDAL, no QGIS, no helpers that need them).

``GPU_CHECK_TEST_DEVICE=cpu`` runs the same tests on the CPU (the out-of-memory test and onnxruntime's CUDA
provider excepted), so their code is known to run before a card is at hand; tests/test_gpu_check.py does.

Tolerances: bf16 keeps 8 bits of mantissa (relative rounding 2^-9 ≈ 0.2 %).  In accurate mode the advection
grid stays fp32 and only the field network runs in bf16; in paper mode the whole network does.  fp32 on the
card is compared with TF32 switched off (cuDNN uses TF32 for convolutions by default on Ampere and later)."""
import contextlib
import gc
import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model.device import out_of_memory_as_error  # noqa: E402
from model.inference import TorchTileRunner, advection_fields, generate_frames  # noqa: E402
from model.presets import make_config  # noqa: E402
from model.synthetic import translation_pair  # noqa: E402
from model.training import train_pair  # noqa: E402

DEVICE = os.environ.get("GPU_CHECK_TEST_DEVICE", "cuda")
ON_CARD = DEVICE.startswith("cuda")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(ON_CARD and not torch.cuda.is_available(), reason="CUDA is not available")]
N = 4
SIDE = 64


@pytest.fixture(scope="module")
def pair():
    x0, x1, truth, d = translation_pair(SIDE, SIDE, dx=5.0, dy=-3.0, steps=N, seed=1)
    return x0, x1, np.asarray(truth, np.float32), d


def _train(pair, mode, iterations=60, **kw):
    x0, x1, _, _ = pair
    cfg = make_config("fast", mode, steps=N, iterations=iterations, patch_size=48, batch_size=4, stride=(4, 4),
                      lr=1e-3)
    return train_pair(x0, x1, config=cfg, device=DEVICE, seed=0, **kw)


@contextlib.contextmanager
def no_tf32():
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def _frames(model, pair, precision):
    x0, x1, _, _ = pair
    with no_tf32(), TorchTileRunner(model, DEVICE, precision=precision) as runner:
        return generate_frames(runner, x0, x1, tile=64), advection_fields(runner, x0, x1)


@pytest.mark.parametrize("mode,max_tol,mean_tol", [("accurate", 0.02, 0.002), ("paper", 0.06, 0.01)])
def test_bf16_frames_within_tolerance_of_fp32(pair, mode, max_tol, mean_tol):
    """The shipped recipe (bf16 autocast, channels-last) trains on the card; the model's bf16 frames stay
    within tolerance of its fp32 frames, and in accurate mode they beat the linear blend on the truth."""
    x0, x1, truth, _ = pair
    r = _train(pair, mode)
    assert r.figures["precision"] == ("bf16" if ON_CARD else "fp32") and r.figures["channels_last"] == ON_CARD
    assert np.all(np.isfinite([h["loss"] for h in r.history]))
    (f16, d16), (f32, d32) = _frames(r.model, pair, "bf16"), _frames(r.model, pair, "fp32")
    span = float(truth.max() - truth.min())
    diff = np.abs(f16 - f32)[1:-1] / span
    assert diff.max() <= max_tol and diff.mean() <= mean_tol, (diff.max(), diff.mean())
    assert np.abs(d16 - d32).mean() <= 0.05 * max(np.abs(d32).mean(), 0.1)
    if mode == "accurate":
        err = [np.abs(f16[j] - truth[j]).mean() for j in range(1, N)]
        lin = [np.abs((1 - j / N) * x0 + j / N * x1 - truth[j]).mean() for j in range(1, N)]
        assert np.mean(err) < 0.5 * np.mean(lin), (err, lin)


def test_deterministic_mode(pair):
    """deterministic=True: the same seed gives the same model.  Bitwise where torch has deterministic kernels
    for every op (the CPU); on the card the backward passes of grid_sample and bilinear upsampling
    accumulate with atomics (torch warns), so there the frames must agree to float rounding."""
    runs, nondet = [], set()
    for _ in range(2):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            r = _train(pair, "paper", iterations=20, deterministic=True, precision="fp32")
        nondet |= {str(w.message).split(" does not have a deterministic")[0] for w in seen
                   if "deterministic" in str(w.message)}
        runs.append(r)
    assert runs[0].figures["deterministic"] and not torch.are_deterministic_algorithms_enabled()  # restored
    a, b = runs[0].model.state_dict(), runs[1].model.state_dict()
    if not nondet:
        assert all(torch.equal(a[k], b[k]) for k in a), "no op warned, yet the weights differ"
    fa, _ = _frames(runs[0].model, pair, "fp32")
    fb, _ = _frames(runs[1].model, pair, "fp32")
    span = float(pair[2].max() - pair[2].min())
    assert np.abs(fa - fb).max() <= 1e-3 * span, (np.abs(fa - fb).max(), sorted(nondet))


@pytest.mark.skipif(not ON_CARD, reason="the CPU's out-of-memory path is tested in test_model_device.py")
def test_out_of_memory_on_the_card_is_the_clear_error():
    """Training on a card that is nearly full stops with the message that says what to reduce, frees the
    card, and a normal run afterwards works; so does a batch too large for one kernel (on an H200 20000
    patches of 256² were refused by a kernel — over 2^31 values in a tensor — before they ran out of memory)."""
    x0, x1, _, _ = translation_pair(320, 320, dx=4.0, dy=2.0, steps=1, seed=2)
    gc.collect()
    torch.cuda.empty_cache()        # what earlier tests left in PyTorch's cache would not count as used
    free, _total = torch.cuda.mem_get_info()
    filler = torch.empty(max(free - 2 ** 28, 0), dtype=torch.uint8, device="cuda")  # leave 256 MiB
    cfg = make_config("paper-example-1", "paper", iterations=1)
    with pytest.raises(RuntimeError, match="GPU out of memory during training; try a smaller BATCH_SIZE") as e:
        train_pair(x0, x1, config=cfg, device=DEVICE)
    assert isinstance(e.value.__cause__, torch.cuda.OutOfMemoryError)
    del e, filler                   # its traceback holds train_pair's tensors
    gc.collect()
    assert torch.cuda.memory_allocated() < 2 ** 30
    cfg = make_config("paper-example-1", "paper", iterations=1, batch_size=20000)
    with pytest.raises(RuntimeError, match="try a smaller BATCH_SIZE") as e:
        train_pair(x0, x1, config=cfg, device=DEVICE)
    assert "GPU batch too large for one kernel" in str(e.value) or "GPU out of memory" in str(e.value)
    del e
    gc.collect()
    assert torch.cuda.memory_allocated() < 2 ** 30
    with pytest.raises(RuntimeError, match="GPU out of memory during inference"):
        with out_of_memory_as_error("inference", torch.device("cuda")):
            torch.empty(2 ** 43, dtype=torch.float32, device="cuda")   # 32 TiB
    r = train_pair(x0, x1, config=make_config("fast", iterations=3), device=DEVICE)
    assert np.isfinite(r.history[-1]["loss"])


def _export_graph(model, path):
    """model/onnx_export's graph written with torch.onnx.export alone (export_onnx also needs ``onnx``
    for the metadata); returns the input names."""
    from model.onnx_export import OPSET, _example, _wrapper, example_extras

    uses_flow = bool(model.cfg.mode != "paper" and model.cfg.flow_init)
    x0, x1, third = _example(model, 64, 64)   # third: the flow, or paper mode's coordinates
    names = ["x0", "x1"] + (["flow"] if uses_flow else []) + (["coords"] if model.uses_coords else [])
    args = (x0, x1, third) if len(names) > 2 else (x0, x1)
    # the pair's border weight (fieldinit.border_weight), validity mask and kind of motion, by name
    kwargs = example_extras(model.uses_border, model.uses_seen, model.uses_several, 64, 64)
    names = names + list(kwargs)
    try:
        with torch.no_grad():
            torch.onnx.export(_wrapper(model.float().eval()), args, str(path), kwargs=kwargs,
                              input_names=names, output_names=["frames", "fields"], opset_version=OPSET,
                              dynamic_axes={n: {2: "h", 3: "w"} for n in names + ["frames", "fields"]
                                            if n not in ("border", "several")},
                              dynamo=False)
    except ModuleNotFoundError as e:
        pytest.skip(f"torch.onnx.export needs a package this environment lacks: {e}")
    return names


def _feed(model, names, h=72, w=88):
    from model.onnx_export import _example, example_extras

    x0, x1, flow = _example(model, h, w, seed=5)
    feed = dict(zip(names, [t.numpy() for t in (x0, x1, flow)]))
    extras = example_extras("border" in names, "seen" in names, "several" in names, h, w)
    feed.update({k: v.numpy() for k, v in extras.items()})
    return feed


@pytest.mark.parametrize("mode", ["accurate", "paper"])
def test_onnx_export_of_gpu_trained_model_agrees_with_torch(pair, mode, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    r = _train(pair, mode, iterations=30)
    path = tmp_path / "m.onnx"
    names = _export_graph(r.model, path)
    feed = _feed(r.model, names)
    got_f, got_d = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)
    model = r.model.to(DEVICE)
    with no_tf32(), torch.no_grad():
        args = {n: torch.from_numpy(feed[n]).to(DEVICE) for n in names}
        frames, disp = model.frames(args["x0"], args["x1"], args.get("flow"), args.get("coords"),
                                    args["border"] if "border" in args else 1.0, args.get("seen"),
                                    args["several"] if "several" in args else 0.0)
    model.to("cpu")
    ref_f = torch.cat(frames, 0).cpu().numpy().reshape(got_f.shape)
    ref_d = disp[0].cpu().numpy().reshape(got_d.shape)
    assert np.abs(got_f - ref_f).max() < 1e-4 and np.abs(got_d - ref_d).max() < 1e-4 * max(np.abs(ref_d).max(), 1)
    try:
        import onnx  # noqa: F401  (the full exporter: metadata + OnnxTileRunner)
    except ImportError:
        return
    from model.modelfile import save_model
    from model.onnx_export import OnnxTileRunner, export_onnx

    save_model(str(tmp_path / "m.inbetween"), r, {"width": SIDE, "height": SIDE})
    worst = export_onnx(str(tmp_path / "m.inbetween"), str(tmp_path / "full.onnx"))
    assert worst["frames"] < 1e-4 and worst["fields"] < 1e-4, worst
    x0, x1, truth, _ = pair
    onnx_frames = generate_frames(OnnxTileRunner(str(tmp_path / "full.onnx"), "cpu"), x0, x1, tile=64)
    torch_frames, _ = _frames(r.model, pair, "fp32")
    span = float(truth.max() - truth.min())
    assert np.nanmax(np.abs(onnx_frames - torch_frames)) <= 1e-4 * span


def test_onnxruntime_cuda_provider_agrees_with_cpu(pair, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA execution provider here (pip install onnxruntime-gpu)")
    r = _train(pair, "paper", iterations=10)
    path = tmp_path / "m.onnx"
    names = _export_graph(r.model, path)
    feed = _feed(r.model, names)
    gpu = ort.InferenceSession(str(path), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert gpu.get_providers()[0] == "CUDAExecutionProvider"
    cpu_f, cpu_d = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)
    gpu_f, gpu_d = gpu.run(None, feed)
    # the CUDA provider may use TF32 convolutions: agreement to ~1e-3 of the [-1, 1] range
    assert np.abs(gpu_f - cpu_f).max() < 1e-2 and np.abs(gpu_d - cpu_d).max() < 1e-2 * max(np.abs(cpu_d).max(), 1)
