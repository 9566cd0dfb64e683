"""Hyperparameter sweeps: Hydra's Optuna sweeper extended with pruning, persistence and result files."""
