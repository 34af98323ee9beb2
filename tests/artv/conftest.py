"""One torch thread per test: these tests run tiny tensors, where thread hand-off on a shared CPU costs far more
than it saves (measured ~25x slower with 2 threads under load)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
