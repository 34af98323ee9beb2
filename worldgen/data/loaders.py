"""Data loaders that can resume mid-epoch.

Lightning restores a data loader's position from a checkpoint only when the loader implements ``state_dict`` /
``load_state_dict``. ``make_loader`` returns torchdata's ``StatefulDataLoader`` (a drop-in ``DataLoader``), so a run
killed mid-epoch and resumed sees exactly the batches an uninterrupted run would have seen. Every DataModule in
worldgen (``worldgen.lit``) builds its training loader through here; the loader itself needs no Lightning.
"""
from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                num_workers: int = 0, **kwargs: Any):
    from torchdata.stateful_dataloader import StatefulDataLoader

    return StatefulDataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                              num_workers=num_workers, persistent_workers=num_workers > 0, **kwargs)
