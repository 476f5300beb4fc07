"""Paper mode (preset fast, CPU) on known-truth sequences at 64 px: the frames move.

The seed paper's qualitative claims, measured against the exact truth (model/synthetic.py): the
intermediate frames are closer to the truth than the linear blend (MAE over the held-out frames) and the
learned field points the way the content moves (mean angle to the true displacement under 20°).  The
rotation needs η to know where it is (``coord_input``: v = ω × (x − centre) depends on position, not only
on the image), so paper mode's η gets each pixel's place in the whole image as two extra channels.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model.presets import make_config, TrainConfig  # noqa: E402
from model.networks import InBetweenNet  # noqa: E402
from model.training import train_pair  # noqa: E402
from model.inference import generate_frames, advection_fields, iter_field_blocks, ArrayPair  # noqa: E402
from model.patches import image_coords  # noqa: E402
from model import synthetic  # noqa: E402
from test_model_training import _threads  # noqa: E402,F401 (autouse fixture: one torch thread)

SIZE = 64
CASES = {
    "inflow_translation": lambda: synthetic.inflow_translation(SIZE, dx=6.4, dy=-3.8, steps=10),
    "rotation": lambda: synthetic.rotation_sequence(SIZE, degrees=20.0, steps=10),
    "appearing": lambda: synthetic.appearing_sequence(SIZE, dx=5.0, dy=3.2, steps=10),
}




def mean_angle(field, truth, mask):
    """Angle (degrees) of the mean cosine between two displacement fields (2, H, W) over ``mask``."""
    u, v, tu, tv = field[0][mask], field[1][mask], truth[0][mask], truth[1][mask]
    cos = (u * tu + v * tv) / (np.hypot(u, v) * np.hypot(tu, tv) + 1e-9)
    return float(np.degrees(np.arccos(np.clip(cos.mean(), -1.0, 1.0))))


def held_out_mae(frames, truth):
    return float(np.mean([np.abs(frames[j] - truth[j]).mean() for j in range(1, len(truth) - 1)]))


def test_paper_mode_starts_from_the_identity():
    """Untrained: ψ∘φ gives back the image (one band) or its band mean, and every field is zero, so
    training starts from the image held still.  A file's configuration without the key (written before)
    keeps the architecture it was trained with."""
    cfg = make_config("fast", "paper")
    assert cfg.identity_start and cfg.lambda_smooth == 10.0
    assert make_config("paper-example-1", "paper").lambda_smooth == 0.01   # the seed's tables untouched
    torch.manual_seed(0)
    for bands in (1, 3):
        net = InBetweenNet(cfg, bands)
        x = torch.randn(2, bands, 40, 56)
        with torch.no_grad():
            back = net.decoder(net.encoder(x))
            disp, _ = net.fields(x)
        assert torch.allclose(back, x.mean(dim=1, keepdim=True).expand_as(back), atol=1e-6)
        assert disp.abs().max() == 0
    old = {k: v for k, v in cfg.to_dict().items() if k != "identity_start"}
    net = InBetweenNet(TrainConfig.from_dict(old), 1)
    with torch.no_grad():
        assert net.fields(torch.randn(1, 1, 32, 32))[0].abs().max() > 0   # random start, as before


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_paper_mode_moves_content(case):
    truth, true_field = CASES[case]()
    n = truth.shape[0] - 1
    x0, x1 = truth[0], truth[-1]
    r = train_pair(x0, x1, config=make_config("fast", "paper", steps=n), seed=0)
    out = generate_frames(r.model, x0, x1)
    linear = np.stack([(1 - j / n) * x0 + j / n * x1 for j in range(n + 1)])
    err, lin = held_out_mae(out, truth), held_out_mae(linear, truth)
    assert err < lin, (err, lin)
    # not a flat field: the brightest cells keep their intensity at mid-interval
    mid = out[n // 2]
    assert np.percentile(mid, 99) > 0.8 * np.percentile(truth[n // 2], 99)
    field = advection_fields(r.model, x0, x1).sum(axis=0)
    rain = x0[0] > 10.0                                        # where there is content (dBZ)
    angle = mean_angle(field, true_field, rain)
    # rotation, training seeds 0/1/2: 8°/4°/4° with coord_input (35°/45°/27° without: η(X0) alone could
    # not tell position from content)
    assert angle < 20.0, angle


def test_coordinates_are_the_place_in_the_whole_image():
    """``coord_input``: η's position channels are each pixel's place in the whole image, the same on a
    training patch, an inference tile (with its halo) and the whole image; files written before the option
    keep η without them."""
    h, w = 37, 52
    whole = image_coords(h, w)
    assert whole.shape == (2, h, w) and whole.min() > -1 and whole.max() < 1
    assert np.allclose(whole[0, 5], (2 * np.arange(w) + 1) / w - 1) and np.allclose(whole[1, :, 5], (2 * np.arange(h) + 1) / h - 1)
    assert np.array_equal(image_coords(h, w, 4, 30, 11, 50), whole[:, 4:30, 11:50])

    cfg = make_config("fast", "paper", steps=2)
    assert cfg.coord_input and not make_config("fast", "accurate").coord_input
    torch.manual_seed(0)
    net = InBetweenNet(cfg, 1)
    assert net.field_net.inp[0].in_channels == 3
    old = {k: v for k, v in cfg.to_dict().items() if k != "coord_input"}
    assert InBetweenNet(TrainConfig.from_dict(old), 1).field_net.inp[0].in_channels == 1
    with torch.no_grad():
        net.field_net.out.weight.normal_(0, 0.1)       # a field that depends on the coordinates
        x = torch.rand(2, 1, h, w)
        coords = torch.from_numpy(whole)[None].expand(2, -1, -1, -1)
        assert torch.equal(net.fields(x)[0], net.fields(x, coords=coords)[0])   # no coords: the whole image
    net.register_buffer("norm_lo", torch.tensor([0.0]))
    net.register_buffer("norm_hi", torch.tensor([1.0]))

    seen = []

    class Recording:                                   # the tiles' inputs, then the torch runner
        def __init__(self, runner):
            self.runner = runner
            for k in ("bands", "steps", "lo", "hi", "uses_flow", "flow_smooth", "flow_prior", "patch_norm",
                      "uses_coords"):
                setattr(self, k, getattr(runner, k))

        def __enter__(self):
            self.runner.__enter__()
            return self

        def __exit__(self, *exc):
            return self.runner.__exit__(*exc)

        def fields(self, a, b, fl, valid, coords=None):
            seen.append((a.shape, coords))
            return self.runner.fields(a, b, fl, valid, coords)

        def frames(self, a, b, fl, valid, coords=None):
            seen.append((a.shape, coords))
            return self.runner.frames(a, b, fl, valid, coords)

    from model.inference import TorchTileRunner
    rng = np.random.default_rng(0)
    x0 = rng.random((1, 70, 90)).astype(np.float32)
    x1 = np.roll(x0, 2, axis=2)
    blocks = list(iter_field_blocks(Recording(TorchTileRunner(net, "cpu")), ArrayPair(x0, x1), tile=32,
                                    overlap=8, halo=6))
    assert len(seen) > 4
    full = image_coords(70, 90)
    for shape, coords in seen:        # each tile's coordinates: a window of the whole image's
        hits = [(r, q) for r in range(70 - shape[1] + 1) for q in range(90 - shape[2] + 1)
                if np.array_equal(coords, full[:, r:r + shape[1], q:q + shape[2]])]
        assert len(hits) == 1
    # without coordinates the tile is taken as the whole image (InBetweenNet.fields' default)
    with TorchTileRunner(net, "cpu") as runner:
        valid = np.ones(x0.shape[1:], bool)
        given = runner.fields(x0, x1, None, valid, image_coords(70, 90))
        assert np.allclose(runner.fields(x0, x1, None, valid), given, atol=1e-5)
        assert not np.allclose(runner.fields(x0, x1, None, valid, image_coords(140, 90, 70, 140, 0, 90)), given)
