"""``worldgen data driving``: driving episodes from highway-env, rendered offscreen, in worldgen's episode format.

DrivingWorld (Hu et al., 2024) trains on front-camera driving video with per-frame ego pose. No such dataset can be
downloaded here, so this generator records the top-down views of highway-env (Leurent, 2018) scenarios instead:
highway-fast, merge, roundabout, intersection and racetrack. The ego car follows a scripted policy drawn per episode
(keep lane, change lane left/right, speed up, brake; the route turns it at intersections, roundabouts and on the
race track) so that ego motion is varied. Per frame we record the ego pose (x, y, yaw in a right-handed world frame:
highway-env's y axis points down the screen, so we store ``(x, -y, -heading)``), speed, the action taken at that
frame and the controls applied after it; a plain-English caption is written from what happened.

Deliberate deviations: the view is top-down and world-aligned (highway-env's renderer), not a front camera.
The planned maneuvers pass a safety filter (``safe_meta``: no lane change into a close car, brake to keep a
1.5 s headway) because highway-env's MDPVehicle does not avoid collisions itself; a crash still makes the episode
restart with the next sub-seed (up to ``MAX_ATTEMPTS``; the last attempt is kept and its caption says so).

Two looks (``--look``, recorded in every sidecar; ``docs/formats.md`` gives the reasons). ``crisp`` (the default since
generator v2) is designed so that structure survives a tiny tokenizer: frames are rendered at the output size with
no anti-aliasing, lane markings are drawn ``stripe_px`` (2) pixels wide and the view is zoomed so that a 5 m car is
about 13x5 px at 64x128. ``legacy`` is the v1 look: rendered at ``RENDER_SCALE`` times the output size and
box-filtered down, highway-env's 0.3 m markings (faint 1 px lines) and a wider view (cars ~10x4 px).

Each episode is written atomically and skipped when it already exists, so rerunning resumes; episode ``i`` only
depends on ``(seed, i)``, so the output does not depend on ``--workers`` or ``--shard``.
"""
from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from worldgen.data.episodes import EPISODES_DIR, is_complete, write_episode, write_manifest

RENDER_SCALE = 2  # legacy look: render at 2x the output size, then area-downsample (anti-aliasing)
MAX_ATTEMPTS = 4  # restarts after a crash before the crashed attempt is kept
GENERATOR_VERSION = 2  # v2: the crisp look is the default


@dataclass(frozen=True)
class Look:
    render_scale: int  # render at this multiple of the output size, then box-filter down
    zoom: float  # view_m is divided by this (>1 = closer view, bigger cars)
    stripe_px: float  # lane-marking width at the output size in px (0 = highway-env's own 0.3 m)


LOOKS = {
    "crisp": Look(render_scale=1, zoom=4 / 3, stripe_px=2.0),  # 64 m -> 48 m across 128 px: 2.67 px/m
    # twice as close: 24 m across 128 px, 5.33 px/m, a 4 m lane change = 21 px (crisp: 11 px); fewer vehicles in view
    "close": Look(render_scale=1, zoom=8 / 3, stripe_px=2.0),
    "legacy": Look(render_scale=RENDER_SCALE, zoom=1.0, stripe_px=0.0),
}
HIGHWAY_STRIPE_M = 0.3  # highway-env's LaneGraphics.STRIPE_WIDTH


@dataclass(frozen=True)
class Scenario:
    env_id: str
    place: str  # caption phrase, may contain {lanes}
    view_m: float  # metres shown across the image width
    centering: tuple = (0.5, 0.5)  # ego position in the image (fraction of width, height)
    target_speeds: tuple = (15.0, 20.0, 25.0, 30.0, 35.0)  # m/s the meta-actions step through
    maneuvers: tuple = ("keep", "left", "right", "faster", "slower")
    controller: str = "meta"  # meta (highway-env DiscreteMetaAction) | pursuit (our lane-following controller)
    extra: dict = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {
    "highway-fast-v0": Scenario("highway-fast-v0", "on a {lanes}-lane highway", 64.0, (0.35, 0.5)),
    "merge-v0": Scenario("merge-v0", "on a highway with a merging on-ramp", 64.0, (0.35, 0.5),
                         (20.0, 25.0, 30.0, 35.0)),
    "roundabout-v0": Scenario("roundabout-v0", "through a roundabout", 70.0, (0.5, 0.5), (4.0, 8.0, 12.0, 16.0)),
    "intersection-v0": Scenario("intersection-v0", "at a four-way intersection", 70.0, (0.5, 0.5),
                                (0.0, 3.0, 6.0, 9.0, 12.0), ("keep", "faster", "slower"),
                                extra={"action": {"type": "DiscreteMetaAction", "lateral": False,
                                                  "longitudinal": True}}),
    "racetrack-v0": Scenario("racetrack-v0", "on a race track", 60.0, (0.5, 0.5), (6.0, 8.0, 10.0, 12.0),
                             controller="pursuit",
                             extra={"action": {"type": "ContinuousAction", "longitudinal": True, "lateral": True},
                                    "other_vehicles": 2}),
}
DEFAULT_ENVS = tuple(SCENARIOS)
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


@dataclass
class GenConfig:
    out: str = "data/driving"  # output dataset folder
    episodes: int = 8  # episodes in the whole dataset (all shards)
    frames: int = 80  # frames per episode
    envs: tuple = DEFAULT_ENVS  # scenarios, cycled over episode indices
    size: tuple = (64, 128)  # output frame height, width (px)
    fps: float = 10.0  # frames per second = policy steps per second
    workers: int = 1  # parallel processes
    seed: int = 0  # dataset seed; episode i uses (seed, i)
    shard: tuple = (0, 1)  # (index, count): this process makes episodes with i % count == index
    progress: bool = True  # show a progress bar
    look: str = "crisp"  # crisp (v2: 2 px markings, zoomed, no anti-aliasing) | close (crisp, half the view) | legacy


def ensure_offscreen() -> None:
    """highway-env turns rendering off (black frames) under SDL_VIDEODRIVER=dummy; 'offscreen' renders for real."""
    if os.environ.get("SDL_VIDEODRIVER", "dummy") == "dummy":
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # SDL otherwise swallows SIGINT/SIGTERM, so Ctrl-C or kill would not stop a long generation
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")


def episode_id(env_id: str, seed: int, i: int) -> str:
    return f"{env_id.removesuffix('-v0')}-s{seed}-{i:05d}"


def episode_seed(seed: int, i: int, attempt: int = 0) -> int:
    return int(np.random.SeedSequence([seed, i, attempt]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------------- scripted policy
class ScriptedPolicy:
    """Piecewise maneuvers of 1-3 s drawn per episode; meta-actions fire once at a segment's start."""

    # speed-ups are filtered more often (a car ahead), so they are drawn a little more often than braking
    WEIGHTS = {"keep": 0.3, "left": 0.175, "right": 0.175, "faster": 0.2, "slower": 0.15}

    def __init__(self, maneuvers: Sequence[str], n_frames: int, fps: float, rng: np.random.Generator):
        w = np.array([self.WEIGHTS[m] for m in maneuvers])
        self.plan: list[str] = []
        while len(self.plan) < n_frames:
            m = maneuvers[int(rng.choice(len(maneuvers), p=w / w.sum()))]
            self.plan += [m] + ["hold"] * (int(rng.uniform(1.0, 3.0) * fps) - 1)
        self.plan = self.plan[:n_frames]

    def __call__(self, i: int) -> str:
        return {"keep": "IDLE", "hold": "IDLE", "left": "LANE_LEFT", "right": "LANE_RIGHT",
                "faster": "FASTER", "slower": "SLOWER"}[self.plan[i]]


def _gap(v, other) -> float:
    return float(np.linalg.norm(other.position - v.position)) if other is not None else float("inf")


def safe_meta(v, meta: str) -> str:
    """Filter a planned meta-action so the ego avoids crashes (each costs a restart): no lane change into a close
    car, no speed-up towards one, and braking (SLOWER) when the 1.5 s headway to the car ahead is violated."""
    road = v.road
    if meta in ("LANE_LEFT", "LANE_RIGHT") and v.lane_index:
        _from, _to, lane_id = v.lane_index
        n_lanes = len(road.network.graph[_from][_to])
        target = lane_id + (-1 if meta == "LANE_LEFT" else 1)
        if not 0 <= target < n_lanes:  # at the road's edge: change to the other side instead (balances left/right)
            meta, target = ("LANE_RIGHT", lane_id + 1) if meta == "LANE_LEFT" else ("LANE_LEFT", lane_id - 1)
            if not 0 <= target < n_lanes:
                return "IDLE"
        front, rear = road.neighbour_vehicles(v, (_from, _to, target))
        if _gap(v, front) < 12.0 + 0.5 * v.speed or _gap(v, rear) < 10.0:
            return "IDLE"
    if meta not in ("LANE_LEFT", "LANE_RIGHT"):
        gap, lead_speed = _ahead(v)
        wanted = float(getattr(v, "target_speed", v.speed))
        if gap < 8.0 + 1.5 * v.speed and min(v.speed, wanted) > lead_speed - 0.5:
            return "SLOWER"  # keep a 1.5 s headway: MDPVehicle itself would drive into a slower car ahead
        if meta == "FASTER" and gap < 8.0 + 1.5 * (v.speed + 5.0):
            return "IDLE"
    return meta


def _ahead(v, half_width: float = 2.5) -> tuple[float, float]:
    """Distance to the nearest car in a corridor ahead of the ego car (any lane: merges, roundabouts, crossings)
    and that car's speed along the ego heading (inf, inf when the corridor is free)."""
    c, s_ = np.cos(v.heading), np.sin(v.heading)
    best, lead_speed = float("inf"), float("inf")
    for o in v.road.vehicles:
        if o is v:
            continue
        dx, dy = o.position - v.position
        fwd, lat = c * dx + s_ * dy, -s_ * dx + c * dy
        if 0 < fwd < best and abs(lat) < half_width + 0.1 * fwd:
            best, lead_speed = fwd, float(np.dot(o.velocity, (c, s_)))
    return best, lead_speed


class PursuitDriver:
    """Lane following for continuous-action scenarios (highway-env's own steering law, Leurent 2018)."""

    def __init__(self, vehicle, target_speeds: Sequence[float]):
        self.v, self.speeds = vehicle, list(target_speeds)
        self.speed_i = len(self.speeds) // 2
        self.lane_id = vehicle.lane_index[2]

    def apply(self, meta: str) -> None:
        n_lanes = len(self.v.road.network.graph[self.v.lane_index[0]][self.v.lane_index[1]])
        step = {"LANE_LEFT": -1, "LANE_RIGHT": 1}.get(meta, 0)
        self.lane_id = int(np.clip(self.lane_id + step, 0, n_lanes - 1))
        self.speed_i = int(np.clip(self.speed_i + {"FASTER": 1, "SLOWER": -1}.get(meta, 0), 0, len(self.speeds) - 1))

    def action(self) -> np.ndarray:
        from highway_env import utils

        v = self.v
        _from, _to, _ = v.lane_index
        lane_id = min(self.lane_id, len(v.road.network.graph[_from][_to]) - 1)
        lane = v.road.network.get_lane((_from, _to, lane_id))
        s, r = lane.local_coordinates(v.position)
        speed = utils.not_zero(v.speed)
        heading_ref = lane.heading_at(s + speed * 0.1) + np.clip(np.arcsin(np.clip(-r / 0.6 / speed, -1, 1)),
                                                                   -np.pi / 4, np.pi / 4)
        rate = utils.wrap_to_pi(heading_ref - v.heading) / 0.2
        steer = np.arctan(2 * np.tan(np.arcsin(np.clip(v.LENGTH / 2 / speed * rate, -1, 1))))
        accel = (self.speeds[self.speed_i] - v.speed) / 0.6
        return np.array([np.clip(accel / 5.0, -1, 1), np.clip(steer / (np.pi / 4), -1, 1)], dtype=np.float32)


def start_speed(v, driver: PursuitDriver | None, speeds: Sequence[float], rng: np.random.Generator) -> None:
    """Start the ego car at a random inner target speed (highway-env starts it near the top of the range, so the
    episodes would mostly brake behind slower traffic)."""
    lo = 0 if speeds[0] > 0 else 1  # never start standing still
    k = int(rng.integers(lo, max(lo + 1, len(speeds) - 1)))
    v.speed = float(speeds[k])
    if driver is not None:
        driver.speed_i = k
    elif hasattr(v, "speed_index"):
        v.speed_index, v.target_speed = k, float(speeds[k])


# ----------------------------------------------------------------------------------------------- one episode
def view_m(sc: Scenario, look: str) -> float:
    """Metres across the image width for a scenario in a look."""
    return sc.view_m / LOOKS[look].zoom


def set_stripe_width(look: str, scaling: float) -> None:
    """Lane markings ``stripe_px`` wide at the output size. highway-env draws them ``int(STRIPE_WIDTH * scaling)``
    px wide (a class attribute, so this is per process; every episode sets it before rendering)."""
    from highway_env.road.graphics import LaneGraphics

    lk = LOOKS[look]
    LaneGraphics.STRIPE_WIDTH = (lk.stripe_px * lk.render_scale + 0.25) / scaling if lk.stripe_px else HIGHWAY_STRIPE_M


def env_config(sc: Scenario, cfg_size: Sequence[int], fps: float, frames: int, rng: np.random.Generator,
               look: str = "crisp") -> dict:
    h, w = (int(x) * LOOKS[look].render_scale for x in cfg_size)
    hz = int(round(fps))
    conf = {"policy_frequency": hz, "simulation_frequency": hz, "screen_width": w, "screen_height": h,
            "scaling": w / view_m(sc, look), "centering_position": list(sc.centering), "offscreen_rendering": True,
            "duration": frames / fps + 10, "show_trajectories": False, "render_agent": True,
            "real_time_rendering": False,
            # the recorder needs no agent observation; highway-env's default Kinematics table (pandas) costs ~2/3
            # of a step
            "observation": {"type": "AttributesObservation", "attributes": []}}
    if sc.env_id.startswith("highway"):
        conf.update(lanes_count=int(rng.integers(2, 5)), vehicles_count=int(rng.integers(8, 30)),
                    vehicles_density=float(rng.uniform(0.6, 1.5)))
    conf.update(sc.extra)
    if sc.controller == "meta":
        conf["action"] = {"type": "DiscreteMetaAction", **conf.get("action", {}), "target_speeds": list(sc.target_speeds)}
    return conf


def make_env(sc: Scenario, conf: dict):
    ensure_offscreen()
    import gymnasium as gym
    import highway_env  # noqa: F401  (registers the environments)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(sc.env_id, render_mode="rgb_array", config=conf, disable_env_checker=True)
    return env


def resize(frame: np.ndarray, size: Sequence[int]) -> np.ndarray:
    from PIL import Image

    h, w = int(size[0]), int(size[1])
    fh, fw = frame.shape[:2]
    if (fh, fw) == (h, w):
        return frame
    if fh % h == 0 and fw % w == 0 and fh // h == fw // w:  # integer factor: exact box filter on strided views
        k = fh // h
        acc = np.zeros((h, w, 3), np.uint16)
        for dy in range(k):
            for dx in range(k):
                acc += frame[dy::k, dx::k]
        return ((acc + k * k // 2) // (k * k)).astype(np.uint8)
    return np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((w, h), Image.Resampling.BOX))


def ego_state(v) -> tuple[list[float], float]:
    """Pose in a right-handed world frame (x, y left, yaw counter-clockwise) and speed from a highway-env vehicle."""
    yaw = float((-v.heading + np.pi) % (2 * np.pi) - np.pi)
    return [float(v.position[0]), float(-v.position[1]), yaw], float(v.speed)


def _neighbours(env, v, radius: float = 40.0) -> int:
    return sum(1 for o in env.unwrapped.road.vehicles if o is not v and np.linalg.norm(o.position - v.position) < radius)


def rollout(sc: Scenario, cfg: GenConfig, seed: int, stop_on_crash: bool = False) -> tuple[np.ndarray, dict]:
    """Run one attempt; returns frames ``(t, h, w, 3)`` and per-frame records (cut short at a crash if asked)."""
    rng = np.random.default_rng(seed)
    conf = env_config(sc, cfg.size, cfg.fps, cfg.frames, rng, cfg.look)
    env = make_env(sc, conf)
    set_stripe_width(cfg.look, conf["scaling"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env.reset(seed=seed)
            return _drive(env, sc, cfg, rng, conf, stop_on_crash)
    finally:
        env.close()


def _drive(env, sc: Scenario, cfg: GenConfig, rng: np.random.Generator, conf: dict,
           stop_on_crash: bool) -> tuple[np.ndarray, dict]:
    u = env.unwrapped
    v = u.vehicle
    policy = ScriptedPolicy(sc.maneuvers, cfg.frames, cfg.fps, rng)
    driver = PursuitDriver(v, sc.target_speeds) if sc.controller == "pursuit" else None
    start_speed(v, driver, sc.target_speeds, rng)
    names = getattr(u.action_type, "actions_indexes", {})
    rec = {k: [] for k in ("poses", "speed", "actions", "controls", "lanes", "neighbours")}
    frames, crashed = [], False
    sim_s = 0.0  # time inside highway-env's step + render, for the benchmark's same-run comparison
    for i in range(cfg.frames):
        t0 = time.perf_counter()
        raw = env.render()
        sim_s += time.perf_counter() - t0
        frames.append(resize(raw, cfg.size))
        pose, speed = ego_state(v)
        meta = safe_meta(v, policy(i))
        rec["poses"].append(pose), rec["speed"].append(speed), rec["actions"].append(meta)
        rec["lanes"].append(list(map(str, v.lane_index)) if v.lane_index else None)
        rec["neighbours"].append(_neighbours(env, v))
        if i == cfg.frames - 1:
            break
        action = names.get(meta, names.get("IDLE", 1))
        if driver is not None:
            driver.apply(meta)
            action = driver.action()
        t0 = time.perf_counter()
        env.step(action)
        sim_s += time.perf_counter() - t0
        rec["controls"].append([float(v.action.get("acceleration", 0.0)), float(v.action.get("steering", 0.0))])
        crashed = crashed or bool(v.crashed)
        if crashed and stop_on_crash:  # this attempt will be discarded; do not pay for the rest of it
            break
    rec["controls"].append(rec["controls"][-1] if rec["controls"] else [0.0, 0.0])
    rec["crashed"], rec["sim_s"] = crashed, sim_s
    rec["lanes_count"] = conf.get("lanes_count")
    return np.stack(frames), rec


# ----------------------------------------------------------------------------------------------- captions
def lane_changes(lanes: list) -> list[str]:
    """'left'/'right' for each change of lane id within the same road segment (highway-env ids grow to the right)."""
    out = []
    for a, b in zip(lanes, lanes[1:]):
        if a and b and a[:2] == b[:2] and a[2] != b[2]:
            out.append("left" if int(b[2]) < int(a[2]) else "right")
    return out


def _runs(items: list[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for x in items:
        out[-1:] = [(x, out[-1][1] + 1)] if out and out[-1][0] == x else out[-1:] + [(x, 1)]
    return out


def caption(sc: Scenario, rec: dict) -> str:
    """Plain-English sentence of what the ego car did, from the recorded trajectory (not from the plan)."""
    acts = []
    changes = lane_changes(rec["lanes"]) if sc.controller == "meta" else []
    for d, n in _runs(changes)[:2]:
        acts.append(f"changes lane to the {d}" if n == 1 else f"changes {NUMBERS.get(n, n)} lanes to the {d}")
    yaw = np.unwrap(np.array(rec["poses"])[:, 2])
    turn = float(np.degrees(yaw[-1] - yaw[0]))
    if sc.env_id.startswith("racetrack"):
        acts.append("follows the curves" if abs(turn) > 30 else "drives a straight section")
    elif abs(turn) > 45 and not changes:
        acts.append(f"turns {'left' if turn > 0 else 'right'}")
    speed = np.array(rec["speed"])
    dv = float(speed[-1] - speed[0])
    if dv > 2.0:
        acts.append("speeds up")
    elif dv < -2.0:
        acts.append("stops" if speed[-1] < 0.5 else "brakes")
    if not acts:
        acts.append("keeps its lane at a steady speed" if speed.mean() > 0.5 else "waits")
    text = "ego " + (", ".join(acts[:-1]) + " and " + acts[-1] if len(acts) > 1 else acts[0])
    lanes = rec.get("lanes_count")
    place = sc.place.format(lanes=NUMBERS.get(lanes, lanes))
    n = float(np.mean(rec["neighbours"]))
    traffic = "light" if n < 2 else "moderate" if n < 5 else "dense"
    crash = " and crashes" if rec["crashed"] else ""
    return f"{text}{crash} {place} in {traffic} traffic"


# ----------------------------------------------------------------------------------------------- driver loop
def make_one(cfg: GenConfig, i: int) -> dict:
    """Generate and write episode ``i`` (skipped if complete); returns a small record for the progress bar."""
    ensure_offscreen()
    env_id = cfg.envs[i % len(cfg.envs)]
    sc, eid = SCENARIOS[env_id], episode_id(env_id, cfg.seed, i)
    if is_complete(cfg.out, eid):
        return {"id": eid, "frames": 0, "skipped": True, "seconds": 0.0, "sim_frames": 0, "sim_seconds": 0.0}
    t0, sim_s, sim_frames = time.perf_counter(), 0.0, 0
    for attempt in range(MAX_ATTEMPTS):
        seed = episode_seed(cfg.seed, i, attempt)
        frames, rec = rollout(sc, cfg, seed, stop_on_crash=attempt < MAX_ATTEMPTS - 1)
        sim_s += rec["sim_s"]
        sim_frames += len(frames)
        if not rec["crashed"]:
            break
    meta = {"fps": cfg.fps, "env_id": env_id, "seed": seed, "dataset_seed": cfg.seed, "index": i,
            "attempt": attempt, "caption": caption(sc, rec), "poses": rec["poses"], "speed": rec["speed"],
            "actions": rec["actions"], "controls": rec["controls"], "lane_index": rec["lanes"],
            "crashed": rec["crashed"], "lanes_count": rec["lanes_count"], "view_m": view_m(sc, cfg.look),
            "look": cfg.look, "generator": f"worldgen.data.generate v{GENERATOR_VERSION}"}
    _clear_stale(cfg.out, eid)
    write_episode(cfg.out, eid, frames, meta)
    return {"id": eid, "frames": len(frames), "skipped": False, "seconds": time.perf_counter() - t0,
            "sim_frames": sim_frames, "sim_seconds": sim_s}


def _clear_stale(out: str, eid: str) -> None:
    """Remove temporary folders a killed run left for this episode (ids are unique to one shard)."""
    import shutil

    for p in (Path(out) / EPISODES_DIR).glob(f".{eid}.*.tmp"):
        shutil.rmtree(p, ignore_errors=True)


def shard_indices(n: int, shard: Sequence[int]) -> list[int]:
    k, count = int(shard[0]), int(shard[1])
    if count < 1 or not 0 <= k < count:
        raise ValueError(f"--shard {k}/{count}: need 0 <= I < N")
    return [i for i in range(n) if i % count == k]


def check_config(cfg: GenConfig) -> None:
    if cfg.look not in LOOKS:
        raise ValueError(f"--look {cfg.look!r}: choose from {', '.join(LOOKS)}")
    unknown = [e for e in cfg.envs if e not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown env(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if cfg.episodes < 1 or cfg.frames < 2:
        raise ValueError(f"need --episodes >= 1 and --frames >= 2, got {cfg.episodes} and {cfg.frames}")
    if cfg.fps < 1 or float(cfg.fps) != int(cfg.fps):
        raise ValueError(f"--fps must be a whole number of frames per second (highway-env steps at integer Hz), got {cfg.fps}")
    if len(cfg.size) != 2 or any(int(s) < 8 or int(s) % 2 for s in cfg.size):
        raise ValueError(f"--size must be HxW with even sides >= 8, got {cfg.size}")


def generate(cfg: GenConfig) -> dict:
    """Make the episodes of this shard (resuming), rebuild the manifest, return a summary with timings."""
    from tqdm import tqdm

    check_config(cfg)
    todo = shard_indices(cfg.episodes, cfg.shard)
    t0, done = time.perf_counter(), []
    bar = tqdm(total=len(todo), desc="episodes", unit="ep", disable=not cfg.progress)
    for rec in _run(cfg, todo):
        done.append(rec)
        bar.update(1)
        frames = sum(r["frames"] for r in done)
        bar.set_postfix(fps=f"{frames / max(time.perf_counter() - t0, 1e-9):.1f}")
    bar.close()
    wall = time.perf_counter() - t0
    manifest = write_manifest(cfg.out, fps=cfg.fps, size=list(cfg.size),
                              extra={"generator": f"worldgen.data.generate v{GENERATOR_VERSION}"})
    made = [r for r in done if not r["skipped"]]
    frames = sum(r["frames"] for r in made)
    busy = sum(r["seconds"] for r in made)
    sim_s = sum(r["sim_seconds"] for r in made)
    return {"out": cfg.out, "written": len(made), "skipped_existing": len(done) - len(made), "frames": frames,
            "seconds": wall, "frames_per_s": frames / wall if wall > 0 else 0.0,
            "episode_compute_s": busy, "parallelism": busy / wall if wall > 0 else 0.0,
            "sim_step_render_s": sim_s, "sim_frames": sum(r["sim_frames"] for r in made),
            "dataset_episodes": manifest["n_episodes"]}


def _run(cfg: GenConfig, todo: list[int]):
    if cfg.workers <= 1 or len(todo) <= 1:
        for i in todo:
            yield make_one(cfg, i)
        return
    import multiprocessing as mp

    ensure_offscreen()
    # forkserver: workers fork from a clean server that imported the simulator once (no pygame state inherited,
    # no per-worker re-import as with spawn)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["worldgen.data.generate", "gymnasium", "highway_env"])
    with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx) as pool:
        futures = [pool.submit(make_one, cfg, i) for i in todo]
        for fut in as_completed(futures):
            yield fut.result()
