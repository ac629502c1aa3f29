"""Server-side differential privacy: fixed clipping of client updates plus seeded Gaussian noise.

Built on Flower's `DifferentialPrivacyServerSideFixedClipping` (its configure_train remembers the
arrays sent; its clipping helper clips update = reply - sent to L2 norm C), with three changes:

1. Error replies are dropped and the rest aggregated. Flower's wrapper returns (None, None) when
   ANY reply is an error, so one revoked or crashed client would freeze the model for the round.
2. Two noise calibrations, per round:
   - "fixed-clipping":  sigma = z·C/m
   - "metric-privacy":  sigma = z·C/(m·d), d = the largest pairwise L2 distance between the
     clipped updates of the round (falls back to z·C/m when d == 0, e.g. a single update, and
     says so in the round's record).
   z noise multiplier, C clipping norm, m the number of updates aggregated this round (each one
   moves an equal-weight average by at most C/m; like Flower's, the calibration assumes equal
   weights, which num-examples or FedAvgOpt weighting only approximates).
3. The noise comes from numpy.random.Generator seeded with (seed, round), so a run can be
   replayed. Whoever knows the seed and the noiseless aggregate can remove the noise: the seed is
   for reproducible experiments and must stay with the server operator in real deployments.

Each round's parameters (sigma, d, C, z, mechanism, which updates were clipped) are kept in
`last_round` for the Recorder.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from logging import INFO, WARNING

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.common import log
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, Strategy
from flwr.supercore.differential_privacy import compute_adaptive_clip_model_update

from .divergence import flat, max_distance, pairwise_distances

FIXED_CLIPPING = "fixed-clipping"
METRIC_PRIVACY = "metric-privacy"


@dataclass
class PrivacyRound:
    """What the privacy mechanism did in one round."""

    server_round: int
    mechanism: str
    noise_multiplier: float
    clipping_norm: float
    sampled_clients: int
    max_distance: float | None
    sigma: float
    clipped: dict[int, bool] = field(default_factory=dict)
    note: str = ""

    def as_record(self) -> dict[str, object]:
        """The `privacy` object of the round record."""
        record: dict[str, object] = {
            "mechanism": self.mechanism, "noise_multiplier": self.noise_multiplier,
            "clipping_norm": self.clipping_norm, "sampled_clients": self.sampled_clients,
            "max_distance": self.max_distance, "sigma": self.sigma,
        }
        if self.note:
            record["note"] = self.note
        return record


def noise_scale(noise_multiplier: float, clipping_norm: float, clients: int, metric_privacy: bool,
                distance: float) -> tuple[float, str]:
    """sigma for one round and a note when metric privacy had to fall back to fixed clipping."""
    fixed = noise_multiplier * clipping_norm / clients
    if not metric_privacy:
        return fixed, ""
    if distance <= 0.0:
        return fixed, "max pairwise distance is 0: sigma falls back to z*C/m"
    return fixed / distance, ""


def round_generator(seed: int, server_round: int) -> np.random.Generator:
    """The round's noise source: reproducible from (seed, round); negative seeds wrap to uint64."""
    return np.random.default_rng([seed % 2**64, server_round])


class ServerSidePrivacy(DifferentialPrivacyServerSideFixedClipping):
    """Wraps any Message-API strategy with server-side clipping and Gaussian noise."""

    def __init__(self, strategy: Strategy, *, noise_multiplier: float, clipping_norm: float,
                 expected_clients: int, seed: int, metric_privacy: bool) -> None:
        # expected_clients only satisfies the parent's checks; sigma uses the round's actual count
        super().__init__(strategy, noise_multiplier, clipping_norm, max(expected_clients, 1))
        self.seed = seed
        self.metric_privacy = metric_privacy
        self.last_round: PrivacyRound | None = None

    @property
    def mechanism(self) -> str:
        return METRIC_PRIVACY if self.metric_privacy else FIXED_CLIPPING

    def __repr__(self) -> str:
        return f"ai4kg server-side DP ({self.mechanism})"

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        valid = [msg for msg in replies if not msg.has_error()]
        for msg in replies:
            if msg.has_error():
                log(INFO, "DP aggregate_train: dropping error reply (src %s): %s",
                    msg.metadata.src_node_id, msg.error.reason)
        if not valid:
            self.last_round = PrivacyRound(server_round, self.mechanism, self.noise_multiplier, self.clipping_norm,
                                           0, None, 0.0, note="no successful replies: nothing aggregated")
            return None, None

        sent = self.current_arrays.to_numpy_ndarrays()
        clipped_replies, clipped_updates, clipped = self._clip(valid, sent)
        distance = max_distance(pairwise_distances(clipped_updates)) if self.metric_privacy else None
        sigma, note = noise_scale(self.noise_multiplier, self.clipping_norm, len(valid), self.metric_privacy,
                                  distance or 0.0)
        self.last_round = PrivacyRound(server_round, self.mechanism, self.noise_multiplier, self.clipping_norm,
                                       len(valid), distance, sigma, clipped, note)
        if note:
            log(WARNING, "DP round %s: %s", server_round, note)

        aggregated, metrics = self.strategy.aggregate_train(server_round, clipped_replies)
        if aggregated is not None:
            aggregated = add_noise(aggregated, sigma, round_generator(self.seed, server_round))
            log(INFO, "DP aggregate_train: %s, sigma %.6g over %d updates (%d clipped)", self.mechanism, sigma,
                len(valid), sum(clipped.values()))
        return aggregated, metrics

    def _clip(self, valid: list[Message], sent: list[np.ndarray]
              ) -> tuple[list[Message], list[np.ndarray], dict[int, bool]]:
        """Copies of the replies with every update clipped to norm C (the caller's stay untouched)."""
        clipped_replies: list[Message] = []
        clipped_updates: list[np.ndarray] = []
        clipped: dict[int, bool] = {}
        for msg in valid:
            content = RecordDict()
            was_clipped = False
            for name, record in msg.content.items():
                if isinstance(record, ArrayRecord):
                    arrays = record.to_numpy_ndarrays()
                    # Flower's helper: arrays <- sent + clip(arrays - sent), True when it scaled
                    was_clipped = compute_adaptive_clip_model_update(arrays, sent, self.clipping_norm) or was_clipped
                    clipped_updates.append(flat(arrays) - flat(sent))
                    record = ArrayRecord(dict(zip(record.keys(), (Array(np.asarray(a)) for a in arrays), strict=True)))
                content[name] = record
            clipped[msg.metadata.src_node_id] = was_clipped
            # same metadata (src node, ids) as the reply it replaces; Message's metadata= argument
            # is Flower's own way to rebuild a message and is absent from its typed overloads
            clipped_replies.append(Message(content=content, metadata=copy.copy(msg.metadata)))  # type: ignore[call-overload]
        return clipped_replies, clipped_updates, clipped


def add_noise(arrays: ArrayRecord, sigma: float, rng: np.random.Generator) -> ArrayRecord:
    """A copy of the arrays with N(0, sigma²) added to every element, in the arrays' dtypes."""
    noisy: dict[str, Array] = {}
    for key, array in arrays.items():
        values = array.numpy()
        noise = rng.normal(0.0, sigma, size=values.shape) if sigma > 0 else np.zeros(values.shape)
        noisy[key] = Array(np.asarray(values + noise.astype(values.dtype, copy=False)))
    return ArrayRecord(noisy)
