"""Offline-RL agents (TD3+BC, IQL, SAC-N/EDAC), shared by PGD and RAVL."""
