"""Presets and the training configuration (no torch import: the plugin reads this at load time).

Two modes share one network family:

``paper``     the seed paper as written: encoder φ → one latent channel, field extractor η(X0) → N
              fields in latent-domain units ([0, 1]² spans one *training* patch), semi-Lagrangian
              advection with Δt, decoder ψ(Z_j); each patch scaled to [−1, 1].  Training starts from
              the identity (``identity_start``: ψ∘φ = band mean, fields zero; see networks.py), and
              the preset ``fast`` weighs the fields' temporal terms more (``_PAPER_FAST``).
              ``coord_input`` (CoordConv): η gets two more channels, each pixel's x and y in the
              *whole* image scaled to (−1, 1) (patches.image_coords), cut with every training patch
              and every inference tile, so a field that depends on position (a rotation,
              v = ω × (x − centre)) can be learnt; from the image alone a translation-equivariant η
              cannot tell position from content (tests/test_paper_mode.py's rotation, training seeds
              0/1/2: field 35°/45°/27° off the truth without, 8°/4°/4° with; held-out MAE 0.63/0.62/0.51
              → 0.32/0.19/0.18 × linear blending's).
``accurate``  (default) still a one-channel latent advected by N velocity fields, but
              - the fields start from a classical flow estimate (DIS both ways, averaged, smoothed;
                recomputed from (X0, X1) at inference, so the file stores no flow) and
                η(X0, X1, flow) learns a residual on top (pixels per step, ×residual_scale);
              - the latent and the image are advected forward from X0 and backward from X1 (fields
                negated) and blended by time; ψ decodes a residual on top of the advected blend;
              - loss: both endpoint predictions, latent consistency, magnitude/smoothness of the residual,
                and forward/backward agreement at the intermediate steps (λ_cons); pixels whose
                trajectory under the initial flow leaves the patch are left out;
              - one global normalisation for the pair (no per-patch scaling, so tiles agree).
              By measurement (FMI radar, the since-removed bench/latent_dev.py) training ψ's residual on the endpoints
              hurt the held-out frames, so ``train_decoder`` is False by default: φ and ψ stay at their
              initialisation (ψ's residual is exactly zero) and only the fields learn.
              What keeps the learned fields from erasing small echoes (issue 10: a rough residual
              made semi-Lagrangian sampling land between convective cells, −42 % domain mean):
              - ``residual_smooth``: the residual is Gaussian-smoothed (σ 24 px), a correction at the
                scale of the motion, not of the pixels;
              - ``sample_once``: each trajectory is composed over the N steps and the image sampled
                once (no N-fold bilinear smoothing of peaks);
              - ``loss="multiscale"``: robust differences at 0, 4 and 12 px blurs, weighted to the
                coarse ones, where an erased echo costs more than a displaced one;
              - ``keep_if_better``: after training the residual is kept only if the two ends carried
                along it agree better in between than along the start (else the model is its start),
                and a start of several motions (pieces drifting apart) is not trained on at all
                (model/training.py: a smooth correction merged the floe's pieces);
              - by default no iterations at all: measured on held-out frames, the learned residual did
                not beat its start on real radar (see _mode_defaults), so the default is the start;
              - the initial motion itself falls back to none when it explains the change worse than
                standing still (model/fieldinit.py), and ``flow_prior="multi-linear"`` adds a candidate from
                optimal transport for pairs with several motions (a floe splitting into pieces) and one
                linear motion of the whole scene, a turn, shear, stretch and shift (DIS measured a third
                of a 40° turn); ``"multi-rigid"`` also fits each piece of a mask (ice
                and water) as a rigid body that drifts and turns (model/rigid_pieces.py), ``"multi-split"``
                cuts pieces that still touch at their necks where that fits better, ``"multi-shifts"``
                also weighs the shift search's next best matches by how well the two ends agree
                half-way (the best match an hour apart can pair unrelated echoes), ``"multi-patterns"``
                breaks the ties among them by pattern and edges, ``"multi-regular"`` (the default)
                measures each optical flow with more weight on smoothness (an hour apart the rougher
                field explains growth and decay as motion), and with
                ``rigid_steps`` the pieces move by one field per step, as free bodies (a turn at a
                constant rate about the floe's centre, a drift at a constant velocity);
              - ``stretch_blend``: where one end's content is stretched along its trajectories (the gap
                opening between pieces that drift apart), the blend trusts the other end;
              - ``residual_form="solenoidal"``: a trained residual is the curl of a stream function,
                divergence-free, so it turns and shears the motion but cannot gather or spread echoes;
                the guard judges it by how well the two ends agree at the intermediate times;
              - ``border_trust``: where one end's trajectory began outside the image (echoes flowing in
                or out), the other end, which saw that content, is trusted as far as the motion explains
                the pair (fieldinit.border_weight); where it explains less, both ends stay blended;
              - ``gaps_as_border``: a trajectory that began in a gap of the data (NaN) counts as one
                from outside the image (the validity mask is read at each departure point);
              - ``whole_stretch``: for a pair whose start has several motions (pieces drifting apart),
                the blend weighs each end also by how much its content will be stretched over the whole
                interval (``ends_squared``: by its square), so the cracks open from the first frame on.
"""
from dataclasses import dataclass, asdict, fields as dc_fields

PRESET_NAMES = ["fast", "paper-example-1", "paper-example-2", "paper-example-3"]
MODE_NAMES = ["accurate", "paper"]
LOSS_NAMES = ["mse", "multiscale"]
RESIDUAL_FORMS = ["free", "solenoidal"]
# model/fieldinit.PRIORS (no numpy import here)
FLOW_PRIORS = ["auto", "multi", "multi-jaccard", "multi-linear", "multi-rigid", "multi-split", "multi-shifts",
               "multi-patterns", "multi-regular", "shift", "none"]

# The seed's Tables 2-4 (see DESIGN.md) plus the CPU-friendly "fast" preset.
_PRESETS = {
    "fast": dict(encoder_widths=(8, 16, 8), unet_in=8, unet_stages=(8, 16), unet_bottleneck=32,
                 steps=10, stride=(8, 8), lambda_ae=1.0, lambda_mag=0.01, lambda_smooth=0.01,
                 lr=1e-3, gamma=0.8, iterations=200, batch_size=4, patch_size=96),
    "paper-example-1": dict(encoder_widths=(32, 64, 128, 64, 32, 16, 8), unet_in=16,
                            unet_stages=(16, 32, 64), unet_bottleneck=128, steps=10, stride=(1, 1),
                            lambda_ae=1.0, lambda_mag=0.01, lambda_smooth=0.01, lr=1e-4, gamma=0.8,
                            iterations=20000, batch_size=8, patch_size=256),
    "paper-example-2": dict(encoder_widths=(16, 32, 64, 32, 16, 8), unet_in=32,
                            unet_stages=(32, 64, 128), unet_bottleneck=256, steps=8, stride=(10, 10),
                            lambda_ae=1.0, lambda_mag=0.001, lambda_smooth=0.06, lr=1e-4, gamma=0.9,
                            iterations=20000, batch_size=8, patch_size=256),
    "paper-example-3": dict(encoder_widths=(16, 32, 64, 32, 16, 8), unet_in=32,
                            unet_stages=(32, 64, 128), unet_bottleneck=256, steps=10, stride=(10, 10),
                            lambda_ae=1.0, lambda_mag=0.01, lambda_smooth=0.01, lr=1e-4, gamma=0.8,
                            iterations=20000, batch_size=8, patch_size=256),
}

# Paper mode with the CPU preset: 200 iterations instead of the seed's 20000.  With the seed's weights
# (λ_mag 0.01, λ_smooth 0.01) the only loss on the fields is X0 carried to t1, which fixes where the
# trajectories end but not the steps: after 200 iterations the per-step fields zigzag (on a rotation,
# cosine to the truth 0.4 ... −0.35 across the steps, twice its length) and the intermediate frames are
# worse than linear blending.  Stronger temporal smoothness and magnitude (the paper's own terms) make the
# steps agree (cosine 0.95 at every step), measured on tests/test_paper_mode.py's sequences.
_PAPER_FAST = dict(lambda_mag=0.1, lambda_smooth=10.0)

MIN_PATCH = 16  # smallest patch the U-nets accept (two poolings, 3x3/5x5 kernels)


@dataclass
class TrainConfig:
    preset: str = "fast"
    mode: str = "accurate"
    steps: int = 10                 # N, number of advection steps (frames 0..N)
    iterations: int = 300
    batch_size: int = 4
    patch_size: int = 96
    stride: tuple = (8, 8)          # (rows, cols) between candidate patch corners
    lr: float = 1e-3
    gamma: float = 0.8
    decay_every: int = 10000        # lr *= gamma every decay_every iterations
    lambda_ae: float = 1.0
    lambda_mag: float = 0.01
    lambda_smooth: float = 0.01
    dt: float = 0.1                 # paper mode: Z(x, t+dt) = Z(x - W dt, t), W in [0,1]^2 units
    encoder_widths: tuple = (8, 16, 8)
    unet_in: int = 8
    unet_stages: tuple = (8, 16)
    unet_bottleneck: int = 32
    field_kernel: int = 5
    decoder_kernel: int = 3
    # accurate mode
    flow_init: bool = True          # start the fields from a DIS flow estimate (recomputed at inference)
    flow_smooth: float = 2.0        # Gaussian sigma (px) applied to the initial flow
    flow_prior: str = "auto"        # how the initial flow is found (model/fieldinit.initial_flow): "auto"
                                    # (files from before), "multi" (+ the optimal-transport candidate),
                                    # "multi-jaccard" (that candidate judged relative to the content),
                                    # "multi-linear" (+ a linear-motion candidate),
                                    # "multi-rigid" (+ rigid pieces on masks), "multi-split" (+ pieces
                                    # that touch cut at their necks), "multi-shifts" (+ the shift
                                    # search's next best matches), "multi-patterns" (+ their ties
                                    # broken by pattern and edges), "multi-regular" (+ DIS weighted
                                    # towards smooth fields)
    flow_log_view: bool = False     # measure the initial flow on a log scale where the values are
                                    # heavy-tailed, e.g. rain rates (fieldinit.motion_view; False: files
                                    # from before, the values' own scale)
    bidirectional: bool = True      # blend latent advected from X0 forward and from X1 backward
    residual_decoder: bool = True   # psi decodes a residual on top of the advected image
    residual_scale: float = 1.0     # accurate mode: pixels per unit of the field net's residual output
    lambda_cons: float = 0.0        # accurate mode: forward/backward agreement at intermediate steps
    train_decoder: bool = True     # accurate mode: False keeps psi's residual at zero (fields only)
    stretch_blend: bool = False     # accurate mode: weight each end by how little its content was
                                    # stretched on the way (advection.kept_area)
    border_trust: bool = False      # accurate mode with stretch_blend: where one end's trajectory began
                                    # outside the image, trust the other end as far as the motion explains
                                    # the pair (fieldinit.border_weight; False: files from before, blended)
    gaps_as_border: bool = False    # with border_trust: a trajectory that began in a gap of the data (NaN,
                                    # no coverage) is weighted like one from outside the image
    whole_stretch: bool = False     # with stretch_blend: for a pair whose start has several motions
                                    # (pieces drifting apart), each end's weight is also at most the area
                                    # its content keeps over the whole interval (advection.time_blend)
    ends_squared: bool = False      # with whole_stretch: that area squared (False: files from before)
    rigid_steps: bool = False       # with flow_prior "multi-rigid" onwards: the pieces move by per-step fields
                                    # (rigid_pieces.Pieces.step_fields; False: files from before, by the one
                                    # stationary field)
    occlusion_blend: bool = False   # accurate mode: weight each end by whether its trajectory stayed
                                    # inside the image (measured worse on FMI: 3.22 vs 3.12 dBZ, so off)
    # accurate mode, issue 10 (defaults here keep the behaviour of model files written before them)
    sample_once: bool = False       # compose each trajectory and sample the image once (keeps peaks)
    tail_match: float = 0.0         # each intermediate frame's values above this quantile raised to the dimmer
                                    # end's at the same rank (model/intensity.py); 0: off (files from before)
    residual_smooth: float = 0.0    # Gaussian sigma (px) of the learned residual fields
    loss: str = "mse"               # "mse", or "multiscale": robust differences at several blurs
    residual_form: str = "free"     # "free": two components per step; "solenoidal": the curl of a
                                    # learned stream function (divergence-free: moves, turns, shears,
                                    # never a source or sink)
    keep_if_better: bool = False    # after training, keep the learned residual only if it fits the
                                    # endpoints better than the start (else the start is kept)
    patch_norm: bool = False        # scale each patch to [-1, 1] (paper) instead of one global scaling
    identity_start: bool = False  # paper mode: ψ∘φ starts as the identity (False: files from before)
    coord_input: bool = False       # paper mode: η also gets each pixel's x, y in the whole image (CoordConv;
                                    # False: files from before)
    min_valid_fraction: float = 0.5  # patches with fewer valid pixels are skipped when possible
    log_every: int = 1

    def to_dict(self):
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dc_fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown configuration keys: {sorted(unknown)}")
        kw = {}
        for k, v in d.items():
            kw[k] = tuple(v) if isinstance(v, list) else v
        cfg = cls(**kw)
        validate(cfg)
        return cfg


def _mode_defaults(mode):
    if mode == "paper":
        # coord_input: see the module docs (a rotation's field needs η to know where it is)
        return dict(flow_init=False, bidirectional=False, residual_decoder=False, patch_norm=True,
                    identity_start=True, coord_input=True)
    # measured on FMI radar (the since-removed bench/latent_dev.py): training psi's residual at the endpoints made the
    # held-out intermediate frames worse (+0.12 dBZ MAE), so by default it stays at zero (frames are the
    # time-weighted blend of both ends advected along the learned fields); the fields learn a residual
    # on the flow initialisation with the forward/backward consistency term.
    # iterations=0: on held-out radar frames (bench/quality.py, 2026-11-26) the trained residual made
    # two MeteoSwiss cases of four worse than the start (MAE 1.86 -> 2.05 and 2.69 -> 2.84 dBZ, domain mean
    # kept 0.87 -> 0.78) although it fitted the endpoints 26 % better, left the FMI case unchanged and
    # improved only the synthetic rotation (1.32 -> 1.20): by default the model is its start, and a
    # learned correction is opt-in (ITERATIONS > 0), kept only where it fits the endpoints better.
    # residual_smooth 24 (a quarter of preset fast's 96 px patch): a trained solenoidal residual smoothed
    # at 6 px was worse than its start on 4 of the 17 bench cases beyond noise (growth/decay 0.58 -> 0.64,
    # MeteoSwiss line 1.21 -> 1.24 dBZ, floe IoU 0.89 -> 0.87), better on 1 (rotation 1.35 -> 1.11); at
    # 24 px it turns and shears whole regions but cannot wrap around single cells, and was worse on 1 (the
    # floe, 0.87), better on 2 (rotation 1.16), the same on 14 (seed 0, 2026-11-26).
    return dict(flow_init=True, bidirectional=True, residual_decoder=True, patch_norm=False,
                train_decoder=False, lambda_cons=1.0, residual_scale=5.0, iterations=0,
                sample_once=True, residual_smooth=24.0, loss="multiscale", keep_if_better=True,
                flow_prior="multi-regular", stretch_blend=True, residual_form="solenoidal", border_trust=True,
                gaps_as_border=True, whole_stretch=True, ends_squared=True, flow_log_view=True, rigid_steps=True,
                tail_match=0.98)


def make_config(preset="fast", mode="accurate", **overrides):
    """Configuration for ``preset`` and ``mode`` with ``overrides`` (None values are ignored)."""
    if preset not in _PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    if mode not in MODE_NAMES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODE_NAMES)}")
    kw = dict(_PRESETS[preset])
    kw.update(_mode_defaults(mode))
    if mode == "paper" and preset == "fast":
        kw.update(_PAPER_FAST)
    names = {f.name for f in dc_fields(TrainConfig)}
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in names or k in ("preset", "mode"):
            raise ValueError(f"unknown configuration override {k!r}")
        if k == "stride":
            if isinstance(v, (int, float)):
                v = (int(v), int(v))
            else:
                v = tuple(int(s) for s in v)
        if k in ("encoder_widths", "unet_stages"):
            v = tuple(int(s) for s in v)
        kw[k] = v
    cfg = TrainConfig(preset=preset, mode=mode, **kw)
    validate(cfg)
    return cfg


def validate(cfg):
    def pos_int(name, minimum=1):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int,)) or v < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")

    if cfg.mode not in MODE_NAMES:
        raise ValueError(f"unknown mode {cfg.mode!r}; choose one of {', '.join(MODE_NAMES)}")
    pos_int("steps", 1)
    pos_int("iterations", 0)
    pos_int("batch_size", 1)
    pos_int("patch_size", MIN_PATCH)
    pos_int("decay_every", 1)
    if len(cfg.stride) != 2 or any((not isinstance(s, int)) or s < 1 for s in cfg.stride):
        raise ValueError(f"stride must be one or two integers >= 1, got {cfg.stride!r}")
    for name in ("lr", "dt"):
        v = getattr(cfg, name)
        if not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if not isinstance(cfg.gamma, (int, float)) or not 0 < cfg.gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {cfg.gamma!r}")
    if cfg.flow_prior not in FLOW_PRIORS:
        raise ValueError(f"unknown flow_prior {cfg.flow_prior!r}; choose one of {', '.join(FLOW_PRIORS)}")
    if not isinstance(cfg.tail_match, (int, float)) or not 0.0 <= cfg.tail_match < 1.0:
        raise ValueError(f"tail_match must be in [0, 1), got {cfg.tail_match!r}")
    if cfg.residual_form not in RESIDUAL_FORMS:
        raise ValueError(f"unknown residual_form {cfg.residual_form!r}; choose one of {', '.join(RESIDUAL_FORMS)}")
    if cfg.loss not in LOSS_NAMES:
        raise ValueError(f"unknown loss {cfg.loss!r}; choose one of {', '.join(LOSS_NAMES)}")
    for name in ("lambda_ae", "lambda_mag", "lambda_smooth", "flow_smooth", "residual_smooth"):
        v = getattr(cfg, name)
        if not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"{name} must be a number >= 0, got {v!r}")
    if not cfg.encoder_widths or any(w < 1 for w in cfg.encoder_widths):
        raise ValueError("encoder_widths must be a non-empty list of positive widths")
    if not cfg.unet_stages or any(w < 1 for w in cfg.unet_stages):
        raise ValueError("unet_stages must be a non-empty list of positive widths")
    return cfg
