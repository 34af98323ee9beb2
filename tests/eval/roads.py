"""Tiny synthetic driving episodes for the sim-detector and drivingworld tests: a grey road with white lane lines
(horizontal for a road along +x, vertical for one along +y), dashes that scroll with the forward motion, an optional
coloured car, and sidecars with the fields the generator writes (env_id, poses, speed, lane_index, view_m)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

ROAD, LINE, CAR = 100, 255, (40, 200, 40)


def road_frames(n: int, h: int, w: int, lateral_px, forward_px: float = 3.0, vertical: bool = False,
                car: bool = True, lines=(0.3, 0.5, 0.7)) -> np.ndarray:
    """uint8 ``n h w 3`` frames. ``lateral_px[i]``: integer shift of the road content across the road at frame i
    (down the rows for a horizontal road, right along the columns for a vertical one)."""
    hh, ww = (w, h) if vertical else (h, w)  # draw a horizontal road, transpose at the end for a vertical one
    out = np.full((n, hh, ww, 3), ROAD, np.uint8)
    for i in range(n):
        s = int(round(lateral_px[i]))
        for j, f in enumerate(lines):
            r = int(f * hh) + s
            if not 0 <= r < hh - 1:
                continue
            if j == 1:  # the middle line is dashed and scrolls with the forward motion
                cols = (np.arange(ww) + int(i * forward_px)) % 8 < 4
                out[i, r:r + 2, cols] = LINE
            else:
                out[i, r:r + 2] = LINE
        if car:
            out[i, hh // 2 - 1:hh // 2 + 2, ww // 3:ww // 3 + 4] = CAR
    return out.transpose(0, 2, 1, 3).copy() if vertical else out


def write_road_episodes(root: Path, specs: list[dict], h: int, w: int, view_m: float = 12.0) -> Path:
    """One episode per spec ``{id, env_id, n, lateral_m (per-frame array, + = left), vertical, lane_change_at,
    brake}``; poses are consistent with the drawn motion (x forward along the road at 1 m/frame)."""
    from worldgen.data.episodes import write_episode

    ppm = w / view_m
    for s in specs:
        n, lat = s["n"], np.asarray(s.get("lateral_m", np.zeros(s["n"])), dtype=np.float64)
        vertical = s.get("vertical", False)
        # a horizontal road (heading 0): left (+y) moves the content down (+rows); a vertical road (heading +pi/2):
        # left (-x) moves the content right (+columns)
        frames = road_frames(n, h, w, lat * ppm, vertical=vertical, car=s.get("car", True))
        along = np.arange(n, dtype=np.float64)
        poses = np.stack([-lat, along, np.full(n, np.pi / 2)], 1) if vertical else \
            np.stack([along, lat, np.zeros(n)], 1)
        speed = np.full(n, 10.0)
        if s.get("brake"):
            speed = np.linspace(10.0, 2.0, n)
        lanes = [["a", "b", 1]] * n
        if s.get("lane_change_at") is not None:
            k, new = s["lane_change_at"], s.get("new_lane", 0)
            lanes = [["a", "b", 1]] * k + [["a", "b", new]] * (n - k)
        meta = {"env_id": s["env_id"], "caption": "", "seed": 0, "poses": poses.tolist(), "speed": speed.tolist(),
                "lane_index": lanes, "view_m": view_m, "look": "crisp"}
        write_episode(root, s["id"], frames, meta)
    return root
