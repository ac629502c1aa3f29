"""ServerApp (Message API) that records every round to a JSON-lines file."""
import hashlib
import json
import time
from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import (DifferentialPrivacyServerSideFixedClipping,
                                     FedAdam, FedAvg, FedAvgM, FedMedian, FedProx,
                                     FedYogi, Strategy)

from fedapp.strategy import FedAvgOpt
from fedapp.task import DIM, mse, server_validation

app = ServerApp()


class Recorder(Strategy):
    """Transparent wrapper: delegates everything, records per-round data."""

    def __init__(self, inner: Strategy, path: str, run_id: int):
        self.inner, self.path, self.run_id = inner, path, run_id
        self.round: dict = {}

    def _emit(self, rec: dict) -> None:
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")

    def summary(self) -> None:
        self.inner.summary()

    def configure_train(self, server_round, arrays, config, grid):
        msgs = list(self.inner.configure_train(server_round, arrays, config, grid))
        self.round = {"run_id": self.run_id, "round": server_round,
                      "sampled_nodes": [m.metadata.dst_node_id for m in msgs],
                      "t_start": time.time()}
        return msgs

    def aggregate_train(self, server_round, replies: Iterable[Message]):
        replies = list(replies)
        self.round["client_updates"] = [
            {"node_id": m.metadata.src_node_id, "error": m.error.reason if m.has_error() else None,
             "metrics": None if m.has_error() else dict(m.content["metrics"])}
            for m in replies]
        arrays, metrics = self.inner.aggregate_train(server_round, replies)
        if arrays is not None:
            nd = arrays.to_numpy_ndarrays()
            self.round["model_sha256"] = hashlib.sha256(b"".join(a.tobytes() for a in nd)).hexdigest()
            self.round["model"] = [a.tolist() for a in nd]
        self.round["train_metrics"] = dict(metrics) if metrics else None
        inner = getattr(self.inner, "strategy", self.inner)
        if isinstance(inner, FedAvgOpt):
            self.round["client_weights"] = {str(k): v for k, v in inner.last_weights.items()}
        return arrays, metrics

    def configure_evaluate(self, server_round, arrays, config, grid):
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round, replies):
        metrics = self.inner.aggregate_evaluate(server_round, replies)
        self.round["evaluate_metrics"] = dict(metrics) if metrics else None
        self.round["t_end"] = time.time()
        self._emit(self.round)
        return metrics


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    n = int(cfg["min-nodes"])
    xv, yv = server_validation()
    common = dict(min_train_nodes=n, min_evaluate_nodes=n, min_available_nodes=n)
    name = str(cfg["strategy"]).lower()
    if name == "fedavgopt":
        strategy: Strategy = FedAvgOpt(val_loss=lambda nd: mse(nd[0], xv, yv), **common)
    else:
        cls = {"fedavg": FedAvg, "fedavgm": FedAvgM, "fedmedian": FedMedian,
               "fedprox": FedProx, "fedadam": FedAdam, "fedyogi": FedYogi}[name]
        strategy = cls(**common)
    if float(cfg["dp-clipping-norm"]) > 0:
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy, noise_multiplier=float(cfg["dp-noise-multiplier"]),
            clipping_norm=float(cfg["dp-clipping-norm"]), num_sampled_clients=n)
    rec = Recorder(strategy, str(cfg["records-path"]), context.run_id)
    result = rec.start(grid=grid, initial_arrays=ArrayRecord([np.zeros(DIM)]),
                       num_rounds=int(cfg["num-server-rounds"]), timeout=120,
                       train_config=ConfigRecord({"lr": float(cfg["lr"])}),
                       evaluate_fn=lambda rnd, arr: MetricRecord(
                           {"server-val-mse": mse(arr.to_numpy_ndarrays()[0], xv, yv)}))
    if cfg["records-path"]:
        with open(str(cfg["records-path"]), "a", encoding="utf-8") as f:
            f.write(json.dumps({"run_id": context.run_id, "final": True,
                                "server_eval": {k: dict(v) for k, v in result.evaluate_metrics_serverapp.items()},
                                "model": [a.tolist() for a in result.arrays.to_numpy_ndarrays()]}) + "\n")
