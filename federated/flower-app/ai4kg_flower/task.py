"""The learning task: precipitation nowcasting on four radar quadrants, small enough for numpy.

Modelled on the seed paper's set-up (one radar composite split into four quadrants, each a client):
a linear model predicts a pixel's rain rate at t+1 from the 3x3 neighbourhood around it at t plus
a bias. The fields are synthetic and advected: each step moves the rain by a sub-pixel velocity
(bilinear interpolation, which is itself a 3x3 linear filter, so the model class can represent
the clean dynamics exactly), scales it by a growth factor and adds a drizzle offset.

Each quadrant has its own distribution (intensity, motion, growth, drizzle, sensor noise). One of
them (partition 3, "south-east") has a badly calibrated radar: noise on every observed frame. That
makes its local least-squares solution biased (noisy inputs shrink the kernel towards zero and
push the bias up: errors-in-variables), not merely more variable, so it pulls a num-examples
average away from the model that is best for the region; the server validates on clean fields of
all quadrants. Everything is deterministic given (seed, partition id).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIELD_SIZE = 32          # pixels per side of one quadrant
FRAMES = 9               # observed frames per partition: 8 transitions
EVAL_TRANSITIONS = 2     # the last transitions are each client's local test set
NUM_PARAMETERS = 10      # 3x3 kernel + bias


@dataclass(frozen=True)
class Quadrant:
    """How one quadrant's rain behaves and how well its radar sees it."""

    name: str
    intensity: float                 # mean peak rain rate of a cell (units of 10 mm/h)
    velocity: tuple[float, float]    # (rows, columns) per step, |v| < 1: sub-pixel advection
    growth: float                    # multiplicative growth (>1) or decay (<1) per step
    drizzle: float                   # additive rain rate per step
    noise: float                     # standard deviation of the radar's measurement noise


QUADRANTS: tuple[Quadrant, ...] = (
    Quadrant("north-west", intensity=1.0, velocity=(0.30, 0.20), growth=0.97, drizzle=0.02, noise=0.02),
    Quadrant("north-east", intensity=1.4, velocity=(0.25, -0.15), growth=0.99, drizzle=0.01, noise=0.02),
    Quadrant("south-west", intensity=0.8, velocity=(0.35, 0.30), growth=0.95, drizzle=0.03, noise=0.03),
    Quadrant("south-east", intensity=1.2, velocity=(0.20, 0.25), growth=0.98, drizzle=0.02, noise=0.45),
)


def quadrant(partition_id: int) -> Quadrant:
    """The quadrant a partition covers; with more than four partitions the profiles repeat."""
    if partition_id < 0:
        raise ValueError(f"partition-id must be >= 0, got {partition_id}")
    return QUADRANTS[partition_id % len(QUADRANTS)]


def initial_arrays() -> list[np.ndarray]:
    """The model the server starts from: all zeros (a forecast of no rain)."""
    return [np.zeros((3, 3)), np.zeros(1)]


def advection_kernel(velocity: tuple[float, float]) -> np.ndarray:
    """The 3x3 filter that moves a field by a sub-pixel velocity (bilinear interpolation).

    The value at pixel p after the move is the field at p - v, interpolated from its neighbours."""
    kernel = np.zeros((3, 3))
    dy, dx = -velocity[0], -velocity[1]
    for offset_y, weight_y in _linear_weights(dy):
        for offset_x, weight_x in _linear_weights(dx):
            kernel[1 + offset_y, 1 + offset_x] += weight_y * weight_x
    return kernel


def _linear_weights(shift: float) -> list[tuple[int, float]]:
    """Integer offsets and weights that interpolate a 1-D shift of |shift| < 1."""
    low = int(np.floor(shift))
    frac = shift - low
    return [(low, 1.0 - frac), (low + 1, frac)]


def neighbourhoods(field: np.ndarray) -> np.ndarray:
    """Every pixel's 3x3 neighbourhood (periodic edges), as rows of 9 values in kernel order."""
    return np.stack([np.roll(field, (1 - i, 1 - j), axis=(0, 1)).ravel() for i in range(3) for j in range(3)],
                    axis=1)


def step(field: np.ndarray, q: Quadrant) -> np.ndarray:
    """One time step of the clean dynamics: advect, grow or decay, add drizzle."""
    moved = neighbourhoods(field) @ advection_kernel(q.velocity).ravel()
    return q.growth * moved.reshape(field.shape) + q.drizzle


def rain_cells(rng: np.random.Generator, q: Quadrant, cells: int = 6) -> np.ndarray:
    """An initial field: a few Gaussian rain cells of the quadrant's intensity on a dry background."""
    yy, xx = np.mgrid[0:FIELD_SIZE, 0:FIELD_SIZE]
    field = np.zeros((FIELD_SIZE, FIELD_SIZE))
    for _ in range(cells):
        cy, cx = rng.uniform(0, FIELD_SIZE, size=2)
        width = rng.uniform(2.0, 5.0)
        peak = q.intensity * rng.uniform(0.5, 1.5)
        # periodic distance so a cell near an edge wraps like the advection does
        dy = np.minimum(np.abs(yy - cy), FIELD_SIZE - np.abs(yy - cy))
        dx = np.minimum(np.abs(xx - cx), FIELD_SIZE - np.abs(xx - cx))
        field += peak * np.exp(-(dy**2 + dx**2) / (2 * width**2))
    # overlapping cells would stack up: cap the strongest at the quadrant's peak rate, which keeps
    # the features' scale (and so the stable learning rate of plain gradient descent) bounded
    return field * min(1.0, 1.5 * q.intensity / field.max())


def clean_frames(rng: np.random.Generator, q: Quadrant, frames: int = FRAMES) -> np.ndarray:
    """A sequence of true (unobserved) rain fields, shape (frames, size, size)."""
    out = [rain_cells(rng, q)]
    for _ in range(frames - 1):
        out.append(step(out[-1], q))
    return np.stack(out)


def transitions(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Design matrix (9 neighbours + 1 for the bias) and targets for every consecutive pair."""
    x = np.concatenate([neighbourhoods(f) for f in frames[:-1]])
    y = np.concatenate([f.ravel() for f in frames[1:]])
    return np.hstack([x, np.ones((len(x), 1))]), y


@dataclass(frozen=True)
class Partition:
    """One client's data: training and test transitions of its quadrant, as its radar saw them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_partition(partition_id: int, seed: int = 0) -> Partition:
    """The observed frames of a partition's quadrant (deterministic in seed and partition id)."""
    q = quadrant(partition_id)
    rng = np.random.default_rng([seed, partition_id])
    observed = clean_frames(rng, q)
    observed = observed + rng.normal(0.0, q.noise, size=observed.shape)
    split = FRAMES - EVAL_TRANSITIONS
    x_train, y_train = transitions(observed[: split])
    x_test, y_test = transitions(observed[split - 1:])
    return Partition(x_train, y_train, x_test, y_test)


def global_validation(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The server's validation set: clean fields of all four quadrants (fresh realisations)."""
    parts = [transitions(clean_frames(np.random.default_rng([seed, 1_000_003, index]), q))
             for index, q in enumerate(QUADRANTS)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def flatten(arrays: list[np.ndarray]) -> np.ndarray:
    """Model arrays as one parameter vector (kernel row-major, then bias)."""
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def unflatten(vector: np.ndarray) -> list[np.ndarray]:
    """A parameter vector as the model's arrays."""
    return [vector[:9].reshape(3, 3).copy(), vector[9:10].copy()]


def predict(arrays: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    return x @ flatten(arrays)


def errors(arrays: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The evaluation metrics: mean squared and mean absolute error of the forecast."""
    residual = predict(arrays, x) - y
    return {"mse": float(np.mean(residual**2)), "mae": float(np.mean(np.abs(residual)))}


def train(arrays: list[np.ndarray], data: Partition, epochs: int, learning_rate: float,
          proximal_mu: float = 0.0) -> list[np.ndarray]:
    """Full-batch gradient descent on the MSE, with FedProx's proximal term mu/2·|w - w_global|²."""
    start = flatten(arrays)
    w = start.copy()
    n = len(data.y_train)
    for _ in range(epochs):
        gradient = (2.0 / n) * data.x_train.T @ (data.x_train @ w - data.y_train)
        gradient += proximal_mu * (w - start)
        w -= learning_rate * gradient
    return unflatten(w)
