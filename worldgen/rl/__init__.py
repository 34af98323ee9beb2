"""Offline RL: agents, policy-guided diffusion, dynamics ensembles, RAVL, environments, evaluation."""
