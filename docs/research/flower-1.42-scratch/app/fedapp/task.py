"""Tiny linear-regression task shared by ServerApp and ClientApp (numpy only)."""
import numpy as np

DIM = 5
TRUE_W = np.arange(1, DIM + 1, dtype=np.float64)


def load_partition(partition_id: int, n: int = 64):
    rng = np.random.default_rng(1000 + partition_id)
    x = rng.normal(size=(n, DIM))
    noise = 0.1 * (1 + partition_id)  # heterogeneous clients
    y = x @ TRUE_W + rng.normal(scale=noise, size=n)
    return x, y


def server_validation(n: int = 128):
    rng = np.random.default_rng(42)
    x = rng.normal(size=(n, DIM))
    return x, x @ TRUE_W


def mse(w, x, y) -> float:
    return float(np.mean((x @ w - y) ** 2))
