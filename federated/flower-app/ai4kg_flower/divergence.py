"""How far apart the clients' updates of one round are: the signal for divergence monitoring.

An update is what a client changed: its returned weights minus the global weights the server sent
that round, all arrays flattened into one vector. A client whose update is far from everyone
else's (a poisoned or broken client, or one with very different data) stands out in the matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """All arrays of a model as one float64 vector, in order."""
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def update(client_arrays: Sequence[np.ndarray], global_arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A client's update (client - global), flattened; shapes must match array by array."""
    if len(client_arrays) != len(global_arrays):
        raise ValueError(f"a reply has {len(client_arrays)} arrays, the global model {len(global_arrays)}")
    for index, (mine, theirs) in enumerate(zip(client_arrays, global_arrays, strict=True)):
        if np.shape(mine) != np.shape(theirs):
            raise ValueError(f"array {index}: reply shape {np.shape(mine)} != global shape {np.shape(theirs)}")
    return flat(client_arrays) - flat(global_arrays)


def pairwise_distances(updates: Sequence[np.ndarray]) -> np.ndarray:
    """The symmetric matrix of L2 distances between updates, rows and columns in the given order."""
    n = len(updates)
    matrix = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = float(np.linalg.norm(updates[i] - updates[j]))
    return matrix


def max_distance(distances: np.ndarray) -> float:
    """The largest pairwise distance (0 for fewer than two updates)."""
    return float(distances.max()) if distances.size else 0.0


def median_distance_to_others(distances: np.ndarray) -> np.ndarray:
    """Per update, the median of its distances to every other update (the diagonal left out)."""
    n = len(distances)
    if n < 2:
        return np.zeros(n)
    return np.array([np.median(np.delete(distances[i], i)) for i in range(n)])
