"""Tiny synthetic driving episodes without the simulator, for fast tests of every package that reads driving data.

A top-down road (grass, asphalt, dashed lane markings) follows a kinematic ego car whose behaviour is drawn per
episode (keep lane, change lane left/right, speed up, brake); a few other cars drive in their lanes. The camera is
centred on the ego car with the road direction along the image's width, like highway-env's default view, so the
recorded poses (x forward along the road, y to the left, yaw counter-clockwise) match the image motion: the lane
markings scroll by ``dx`` and shift by ``dy``. Deliberate simplification: the picture is not rotated by the small
ego yaw. Frames, sidecar and manifest use exactly the format of ``worldgen.data.episodes``.
"""
from __future__ import annotations

import math
import os

import numpy as np

from worldgen.data.episodes import is_complete, write_episode, write_manifest

BEHAVIOURS = ("keep", "left", "right", "faster", "brake")
_CAPTIONS = {
    "keep": "ego keeps its lane",
    "left": "ego changes lane to the left",
    "right": "ego changes lane to the right",
    "faster": "ego speeds up in its lane",
    "brake": "ego brakes in its lane",
}
LANE_W = 4.0  # m
PX_PER_M = 2.0  # image scale; the view spans width / 2 metres along the road


def _ego_track(behaviour: str, n: int, fps: float, lane: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Kinematic ego trajectory: world poses (n, 3), speed (n,), actions (n, 2) = [accel m/s^2, steer rad]."""
    dt = 1.0 / fps
    v = rng.uniform(18.0, 26.0)
    x, y, yaw = 0.0, (lane + 0.5) * LANE_W, 0.0
    target_y = y + {"left": LANE_W, "right": -LANE_W}.get(behaviour, 0.0)
    accel = {"faster": 2.5, "brake": -4.0}.get(behaviour, 0.0)
    start = int(rng.integers(0, max(1, n // 3)))
    poses, speed, actions = np.zeros((n, 3)), np.zeros(n), np.zeros((n, 2))
    for i in range(n):
        poses[i], speed[i] = (x, y, yaw), v
        a = accel if i >= start else 0.0
        want = target_y if i >= start else y
        steer = float(np.clip(0.02 * (want - y) - 0.4 * yaw, -0.03, 0.03))
        actions[i] = (a, steer)
        v = max(2.0, v + a * dt)
        yaw += steer * v * dt / 2.5
        x += v * math.cos(yaw) * dt
        y += v * math.sin(yaw) * dt
    return poses, speed, actions


def _others(n_lanes: int, rng: np.random.Generator, k: int = 4) -> np.ndarray:
    """Other cars: rows [x0 m, lane centre y m, speed m/s, r, g, b]."""
    cars = np.zeros((k, 6))
    cars[:, 0] = rng.uniform(-30, 120, k)
    cars[:, 1] = (rng.integers(0, n_lanes, k) + 0.5) * LANE_W
    cars[:, 2] = rng.uniform(15, 28, k)
    cars[:, 3:] = rng.integers(60, 255, (k, 3))
    return cars


def _render(pose: np.ndarray, t: float, cars: np.ndarray, n_lanes: int, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    ex, ey = pose[0], pose[1]
    cols = (np.arange(w) - w / 2) / PX_PER_M + ex  # world x of each column
    rows = (h / 2 - np.arange(h)) / PX_PER_M + ey  # world y of each row (up = left)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (60, 130, 60)
    road = (rows >= 0) & (rows <= n_lanes * LANE_W)
    img[road] = (90, 90, 95)
    for k in range(n_lanes + 1):
        line = np.abs(rows - k * LANE_W) < 0.3
        solid = k in (0, n_lanes)
        dash = np.ones(w, bool) if solid else (np.floor(cols / 3.0) % 2 == 0)
        img[np.ix_(line, dash)] = (235, 235, 235)
    for x0, ly, v, r, g, b in cars:
        cx = x0 + v * t
        in_x = np.abs(cols - cx) < 2.5
        in_y = np.abs(rows - ly) < 1.0
        img[np.ix_(in_y, in_x)] = (r, g, b)
    in_x, in_y = np.abs(cols - ex) < 2.5, np.abs(rows - ey) < 1.0
    img[np.ix_(in_y, in_x)] = (40, 200, 60)
    return img


def make_episode(n_frames: int, size: tuple[int, int], seed: int, fps: float = 10.0,
                 behaviour: str | None = None) -> tuple[np.ndarray, dict]:
    """Frames ``(t, h, w, 3)`` uint8 and sidecar fields for one synthetic episode."""
    rng = np.random.default_rng(seed)
    behaviour = behaviour or BEHAVIOURS[int(rng.integers(len(BEHAVIOURS)))]
    n_lanes = int(rng.integers(3, 5))
    lane = 0 if behaviour == "right" else n_lanes - 1 if behaviour == "left" else int(rng.integers(n_lanes))
    lane = min(max(lane, 1 if behaviour == "right" else 0), n_lanes - 2 if behaviour == "left" else n_lanes - 1)
    poses, speed, actions = _ego_track(behaviour, n_frames, fps, lane, rng)
    cars = _others(n_lanes, rng)
    frames = np.stack([_render(poses[i], i / fps, cars, n_lanes, size) for i in range(n_frames)])
    lanes_word = {3: "three", 4: "four"}[n_lanes]
    meta = {"fps": fps, "env_id": "synthetic-road", "seed": seed, "behaviour": behaviour,
            "caption": f"{_CAPTIONS[behaviour]} on a synthetic {lanes_word}-lane road",
            "poses": poses.round(4).tolist(), "speed": speed.round(4).tolist(),
            "actions": actions.round(4).tolist(), "action_space": "continuous [accel m/s^2, steer rad]"}
    return frames, meta


def make_synthetic_episodes(out_dir: str | os.PathLike, n_episodes: int, n_frames: int,
                            size: tuple[int, int] = (64, 128), seed: int = 0, fps: float = 10.0,
                            with_poses: bool = True) -> dict:
    """Write ``n_episodes`` synthetic episodes of ``n_frames`` frames to ``out_dir``; returns the manifest.

    Episode ``i`` is seeded with ``seed * 100003 + i``, so the same arguments give the same files' content.
    Existing complete episodes are kept (resume). ``with_poses=False`` writes pose-less episodes.
    """
    if n_frames < 1 or n_episodes < 1:
        raise ValueError(f"need at least one episode and one frame, got {n_episodes} x {n_frames}")
    size = (int(size[0]), int(size[1]))
    for i in range(n_episodes):
        eid = f"synth-{seed:04d}-{i:05d}"
        if is_complete(out_dir, eid):
            continue
        frames, meta = make_episode(n_frames, size, seed * 100003 + i, fps,
                                    behaviour=BEHAVIOURS[i % len(BEHAVIOURS)])
        if not with_poses:
            for key in ("poses", "speed", "actions"):
                meta.pop(key)
        write_episode(out_dir, eid, frames, meta)
    return write_manifest(out_dir, fps=fps, size=size, extra={"generator": "worldgen.data.synthetic"})


__all__ = ["make_synthetic_episodes", "make_episode", "BEHAVIOURS"]
