"""Plots and files for results: FVD records (JSON + a PNG of the drift / prefix / block curve beside it) and contact
sheets of frames."""
from __future__ import annotations

import os
from pathlib import Path

from worldgen.io import atomic_path, write_json


def plot_curve(result: dict, path: str | os.PathLike) -> Path:
    """Mean FVD over seeds against the window start / block start / prefix length, with a +-1 std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    curve, path = result["curve"], Path(path)
    x, mean, std = (np.asarray(curve[k], dtype=float) for k in ("x", "mean", "std"))
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(x, mean, marker="o", label=f"{result['protocol']} (mean of {len(result['seeds'])} seed(s))")
    if len(result["seeds"]) > 1:
        ax.fill_between(x, mean - std, mean + std, alpha=0.25, label="±1 std over seeds")
    ax.set_xlabel(curve["x_label"])
    ax.set_ylabel("FVD")
    title = f"{result['protocol']} · detector {result['detector']['name']} · N={result['n_real']}/{result['n_fake']}"
    if result["comparable_to_published"] is False:
        kind = "sim" if str(result["detector"]["name"]).startswith("sim:") else "random"
        title += f"\n{kind} detector: NOT comparable to published FVD"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """``fig`` as a PNG at ``path`` (tight layout, atomic write), then closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def write_sheet(out: str, frames: np.ndarray, per_row: int) -> None:
    """A PNG grid of uint8 ``b h w c`` frames, ``per_row`` per row (1-px separators), and the frames as .npy."""
    import numpy as np
    from PIL import Image

    b, h, w, c = frames.shape
    rows = -(-b // per_row)
    sheet = np.full((rows * (h + 1), per_row * (w + 1), c), 255, np.uint8)
    for i, f in enumerate(frames):
        r, k = divmod(i, per_row)
        sheet[r * (h + 1):r * (h + 1) + h, k * (w + 1):k * (w + 1) + w] = f
    with atomic_path(out) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    with atomic_path(Path(out).with_suffix(".npy")) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, frames)


def write_result(result: dict, out: str | os.PathLike) -> Path:
    """Write ``result`` as JSON at ``out``; curve protocols also get ``<out stem>.png`` (named in the JSON)."""
    out = Path(out)
    if "curve" in result:
        png = out.with_suffix(".png")
        plot_curve(result, png)
        result["plot"] = png.name
    write_json(out, result)
    return out
