"""FedAvgOpt: FedAvg whose client weights are optimised with Nelder-Mead."""
from collections.abc import Callable, Iterable

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAvg


def nelder_mead(f, x0, iters=200, step=0.5):
    """Minimal Nelder-Mead (use scipy.optimize.minimize(method='Nelder-Mead') in prod)."""
    n = len(x0)
    simplex = [np.asarray(x0, float)] + [np.asarray(x0, float) + step * np.eye(n)[i] for i in range(n)]
    vals = [f(p) for p in simplex]
    for _ in range(iters):
        order = np.argsort(vals); simplex = [simplex[i] for i in order]; vals = [vals[i] for i in order]
        c = np.mean(simplex[:-1], axis=0)
        xr = c + (c - simplex[-1]); fr = f(xr)
        if fr < vals[0]:
            xe = c + 2 * (c - simplex[-1]); fe = f(xe)
            simplex[-1], vals[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < vals[-2]:
            simplex[-1], vals[-1] = xr, fr
        else:
            xc = c + 0.5 * (simplex[-1] - c); fc = f(xc)
            if fc < vals[-1]:
                simplex[-1], vals[-1] = xc, fc
            else:
                simplex = [simplex[0]] + [simplex[0] + 0.5 * (p - simplex[0]) for p in simplex[1:]]
                vals = [vals[0]] + [f(p) for p in simplex[1:]]
    return simplex[int(np.argmin(vals))]


class FedAvgOpt(FedAvg):
    def __init__(self, val_loss: Callable[[list[np.ndarray]], float], **kw):
        super().__init__(**kw)
        self.val_loss = val_loss
        self.last_weights: dict[int, float] = {}

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid:
            return None, None
        models = [m.content["arrays"].to_numpy_ndarrays() for m in valid]

        def combine(z):
            a = np.exp(z - z.max()); a /= a.sum()          # softmax -> simplex
            return a, [sum(ai * mdl[k] for ai, mdl in zip(a, models)) for k in range(len(models[0]))]

        z = nelder_mead(lambda z: self.val_loss(combine(z)[1]), np.zeros(len(models)))
        alpha, agg = combine(z)
        self.last_weights = {m.metadata.src_node_id: float(a) for m, a in zip(valid, alpha)}
        metrics = self.train_metrics_aggr_fn([m.content for m in valid], self.weighted_by_key)
        return ArrayRecord(agg), metrics
