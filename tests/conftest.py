"""Shared test set-up: headless rendering, offline hubs, deterministic seeds."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import av  # noqa: F401  before anything imports decord: decord's bundled FFmpeg, loaded first, breaks PyAV's
#                         libvpx-vp9 encoder ("ABI version mismatch"), which the container tests write .webm with
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: the tests run tiny tensors, where thread hand-off costs more than it saves
    (measured ~25x slower with 2 threads on a loaded 2-core machine). Multi-process tests set their own."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
