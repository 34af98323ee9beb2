"""Tiny test videos for the FVD tests."""
import numpy as np

SIZE = 32  # detector resolution for the random-detector smoke tests (the default is 224)


def random_videos(n: int, t: int, seed: int, h: int = 32, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, t, h, w, 3), dtype=np.uint8)


def moving_videos(n: int, t: int, seed: int, h: int = 32, w: int = 32) -> np.ndarray:
    """Smooth moving gradients: a video-like signal unlike uniform noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((n, t, h, w, 3), np.uint8)
    for i in range(n):
        phase, speed = rng.uniform(0, 6.28, 3), rng.uniform(0.1, 0.5)
        for j in range(t):
            for c in range(3):
                out[i, j, ..., c] = 127.5 + 127 * np.sin((xx + yy * (c + 1)) / 6 + phase[c] + speed * j)
    return out
