"""Demo test fixtures: tiny random-weight checkpoints (shipped layout) and one running demo server per session."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from tests.demo.tiny import make_all

    return make_all(tmp_path_factory.mktemp("demo-tiny"))


@pytest.fixture(scope="session")
def server(tiny, tmp_path_factory):
    """The demo on CPU, bound to 127.0.0.1 on a free port; yields (Demo, url)."""
    import torch

    from worldgen.demo.app import DemoConfig, launch
    from worldgen.demo.pipelines import Limits
    from tests.helpers import free_port

    threads = torch.get_num_threads()
    limits = Limits(max_upload_frames=40, max_horizon=2000)
    cfg = DemoConfig(checkpoints=str(tiny["checkpoints"]), examples=str(tiny["examples"]), devices="cpu",
                     data=str(tiny["data"]), default_horizon=16, limits=limits, upload_ttl_s=0.0,
                     work_dir=str(tmp_path_factory.mktemp("demo-work")))
    demo, app, url = launch(cfg, port=free_port(), block=False)
    yield demo, url
    app.close()
    demo.pool.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def client(server):
    from gradio_client import Client

    return Client(server[1], verbose=False)
