"""The eight aggregation strategies a federation can choose, on Flower's Message API.

fedavg, fedavgm, fedmedian, fedprox, fedadam and fedyogi are Flower's own classes (fedavgm with one
fix, see FedAvgMSent). fedopt and fedavgopt are defined here:
- FedOptSGD: the FedOpt family of Reddi et al. (arXiv:2003.00295) with plain server SGD with
  momentum as the server optimiser. Flower 1.42 has FedOpt only as the (unexported) base class of
  FedAdam/FedYogi/FedAdagrad; it tracks the arrays sent and computes the pseudo-gradient Δ and its
  momentum m_t but never steps. We import that class and add the step x <- x + eta·m_t.
- FedAvgOpt: FedAvg whose client weights are optimised so the aggregate lies as close as possible
  to every client's weights (a robust, geometric-median-like average).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from logging import INFO, WARNING
from typing import Any, cast

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedMedian, FedProx, FedYogi, Strategy
from flwr.serverapp.strategy.fedopt import FedOpt
from scipy.optimize import minimize

from .config import FederationConfig
from .divergence import flat

MetricsAggregation = Callable[[list[RecordDict], str], MetricRecord]


def weighted_metrics(metric: str) -> MetricsAggregation:
    """A metrics aggregation: the weighted average of every numeric metric of the replies.

    Weighted by the weighting key (num-examples); the key itself is left out, as Flower does. The
    configured evaluation `metric` must be among them: a reply without it is a client bug, logged."""

    def aggregate(records: list[RecordDict], weighting_key: str) -> MetricRecord:
        metric_records = [next(iter(record.metric_records.values())) for record in records]
        weights = np.array([float(cast(float, m[weighting_key])) for m in metric_records])
        total = weights.sum()
        if total <= 0:
            return MetricRecord()
        names = sorted({name for m in metric_records for name in m.keys() if name != weighting_key})
        averaged = MetricRecord()
        for name in names:
            values = [m.get(name) for m in metric_records]
            if any(isinstance(v, list) or v is None for v in values):
                continue  # a list metric or one some replies lack has no meaningful weighted mean
            averaged[name] = float(np.dot(weights, np.array(values, dtype=np.float64)) / total)
        if metric not in averaged:
            log(WARNING, "metrics aggregation: the configured metric '%s' is not in the replies' metrics %s",
                metric, names)
        return averaged

    return aggregate


class FedAvgMSent(FedAvgM):
    """Flower's FedAvgM, but its server step starts from the arrays actually sent each round.

    Flower's FedAvgM records the arrays once (round 1) and then only its own aggregates; when a DP
    wrapper adds noise after it, the clients train from the noisy model while FedAvgM's
    pseudo-gradient would be taken against the noise-free one. Remembering what was sent keeps the
    momentum step consistent with what the clients saw (identical when nothing wraps it)."""

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        self.current_arrays = arrays
        return super().configure_train(server_round, arrays, config, grid)


class FedOptSGD(FedOpt):
    """FedOpt with server SGD (+ momentum beta_1): x <- x + eta · m_t, m_t = β1·m + (1-β1)·Δ.

    Δ is the FedAvg aggregate minus the arrays sent this round (FedOpt._compute_deltat_and_mt).
    With eta = 1 and beta_1 = 0 this is FedAvg, as in Reddi et al."""

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        aggregated, metrics = super().aggregate_train(server_round, replies)
        if aggregated is None:
            return aggregated, metrics
        _, momentum, _ = self._compute_deltat_and_mt(aggregated)
        assert self.current_arrays is not None  # _compute_deltat_and_mt raised otherwise
        stepped = {key: x + self.eta * momentum[key] for key, x in self.current_arrays.items()}
        return ArrayRecord({key: Array(np.asarray(value)) for key, value in stepped.items()}), metrics


def simplex(z: np.ndarray) -> np.ndarray:
    """Softmax: free variables to weights that are positive and sum to one."""
    e = np.exp(z - z.max())
    return e / e.sum()


def distance_objective(models: np.ndarray) -> Callable[[np.ndarray], float]:
    """Σ_j ‖w(α) − w_j‖ for w(α) = Σ_k α_k w_k, α = softmax(z): the sum of (non-squared) L2
    distances from the aggregate to every client's weights.

    Non-squared distances make it a geometric median restricted to the clients' convex hull: a
    client far from the rest moves the optimum far less than under squared distances (whose
    optimum would be the plain mean). We use absolute, not the upstream's relative distance
    ‖w−w_j‖/‖w+w_j‖: that one depends on where the origin is (zero-initialised weights make
    ‖w+w_j‖ tiny in early rounds, so the terms blow up unevenly) and rescales each client's term
    by its own norm, which rewards clients with large weights rather than central ones."""

    def objective(z: np.ndarray) -> float:
        aggregate = simplex(z) @ models
        return float(np.linalg.norm(models - aggregate, axis=1).sum())

    return objective


class FedAvgOpt(FedAvg):
    """FedAvg with optimised client weights α (Nelder–Mead on softmax-parameterised weights).

    α starts at FedAvg's num-examples shares and is moved to minimise `distance_objective`.
    `last_weights` maps each node of the last aggregated round to the α it got."""

    def __init__(self, *, max_iterations: int = 400, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.max_iterations = max_iterations
        self.last_weights: dict[int, float] = {}

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid:
            self.last_weights = {}
            return None, None
        records = [_only_arrayrecord(msg) for msg in valid]
        keys = list(records[0].keys())
        models = np.stack([flat(record.to_numpy_ndarrays()) for record in records])
        examples = np.array([float(cast(float, _only_metricrecord(msg)[self.weighted_by_key])) for msg in valid])
        alpha = self._optimised_weights(models, examples)
        self.last_weights = {msg.metadata.src_node_id: float(a) for msg, a in zip(valid, alpha, strict=True)}
        log(INFO, "aggregate_train: FedAvgOpt weights %s", {str(k): round(v, 4) for k, v in self.last_weights.items()})
        aggregated = ArrayRecord({key: Array(_weighted_sum(alpha, [record[key].numpy() for record in records]))
                                  for key in keys})
        metrics = self.train_metrics_aggr_fn([msg.content for msg in valid], self.weighted_by_key)
        return aggregated, metrics

    def _optimised_weights(self, models: np.ndarray, examples: np.ndarray) -> np.ndarray:
        start = np.log(examples / examples.sum())
        if len(models) == 1:
            return np.ones(1)
        objective = distance_objective(models)
        result = minimize(objective, start, method="Nelder-Mead",
                          options={"maxiter": self.max_iterations * len(models), "xatol": 1e-6, "fatol": 1e-10})
        # Nelder–Mead keeps its best vertex, the start among them; guard anyway: never worse than FedAvg
        best = result.x if objective(result.x) <= objective(start) else start
        return simplex(best)


def _weighted_sum(weights: np.ndarray, arrays: list[np.ndarray]) -> np.ndarray:
    """Σ_k weights_k · arrays_k, in the clients' dtype (float64 weights would widen float32)."""
    total = sum(float(w) * a.astype(np.float64) for w, a in zip(weights, arrays, strict=True))
    return np.asarray(total).astype(arrays[0].dtype, copy=False)


def _only_arrayrecord(msg: Message) -> ArrayRecord:
    return next(iter(msg.content.array_records.values()))


def _only_metricrecord(msg: Message) -> MetricRecord:
    return next(iter(msg.content.metric_records.values()))


def build_strategy(config: FederationConfig) -> Strategy:
    """The configured strategy, with the federation's sampling and metrics aggregation."""
    common: dict[str, Any] = dict(
        config.strategy_sampling(),
        weighted_by_key="num-examples",
        train_metrics_aggr_fn=weighted_metrics(config.metric),
        evaluate_metrics_aggr_fn=weighted_metrics(config.metric),
    )
    adaptive: dict[str, Any] = dict(eta=config.eta, eta_l=config.eta_l, beta_1=config.beta_1, beta_2=config.beta_2,
                    tau=config.tau)
    builders: dict[str, Callable[[], Strategy]] = {
        "fedavg": lambda: FedAvg(**common),
        "fedavgm": lambda: FedAvgMSent(**common, server_learning_rate=config.server_learning_rate,
                                       server_momentum=config.server_momentum),
        "fedmedian": lambda: FedMedian(**common),
        "fedprox": lambda: FedProx(**common, proximal_mu=config.proximal_mu),
        "fedopt": lambda: FedOptSGD(**common, **adaptive),
        "fedadam": lambda: FedAdam(**common, **adaptive),
        "fedyogi": lambda: FedYogi(**common, **adaptive),
        "fedavgopt": lambda: FedAvgOpt(**common),
    }
    return builders[config.strategy]()


def aggregation_weights(strategy: Strategy, replies: Sequence[Message]) -> list[float | None]:
    """The weight each successful reply had in the last aggregation, in reply order.

    FedAvgOpt: its optimised α. FedMedian: none (a coordinate-wise median has no weights). Every
    other strategy here averages by num-examples before its server step: the example shares."""
    if isinstance(strategy, FedAvgOpt):
        return [strategy.last_weights.get(msg.metadata.src_node_id) for msg in replies]
    if isinstance(strategy, FedMedian) or not isinstance(strategy, FedAvg):
        return [None for _ in replies]
    examples = [float(cast(float, _only_metricrecord(msg)[strategy.weighted_by_key])) for msg in replies]
    total = sum(examples)
    return [e / total if total > 0 else None for e in examples]
