"""The ServerApp: runs the configured strategy and reports every round to the platform.

Pipeline: build_strategy(config) -> ServerSidePrivacy (when dp) -> Recorder. The Recorder is a
transparent Strategy wrapper (Flower's Strategy.start drives it and calls its hooks) that:
- samples only the nodes the platform admits: before each round it asks the platform
  (GET {platform-url}/v1/federations/{federation}/admitted) and hands the strategy a Grid whose
  get_node_ids lists those alone, so a key the platform revoked (or never admitted) is not
  sampled, and min-available-clients counts admitted nodes;
- drops nodes the platform revoked from the messages of every later round;
- after each round's server-side evaluation, builds the round record (who was sampled, each
  update's size, weight and clipping, pairwise update distances, the model hashes, metrics, the
  privacy parameters) and POSTs it to {platform-url}/v1/federations/{federation}/rounds, or
  appends it to records-path when there is no platform (plain Flower runs, tests);
- reads the platform's answer {"revoked_nodes": [...]}.

The recorder token comes from the SuperLink's environment (AI4KG_RECORDER_TOKEN, put there by the
platform's launcher), or from the run config's recorder-token; it is sent in X-Recorder-Token.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from logging import ERROR, INFO, WARNING
from pathlib import Path
from typing import Any, Protocol, cast

import httpx
import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Result, Strategy

from . import divergence, task
from .config import FederationConfig
from .privacy import ServerSidePrivacy
from .strategies import aggregation_weights, build_strategy

app = ServerApp()

POST_DEADLINE_S = 60.0
EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]


class RecorderRejected(RuntimeError):
    """The platform refused a round record (4xx) or could not be reached in time: the run must fail."""


TOKEN_VARIABLE = "AI4KG_RECORDER_TOKEN"
TOKEN_HEADER = "X-Recorder-Token"
ADMITTED_CACHE_S = 1.0
"""How long one answer of the platform's admitted nodes serves (sampling asks every second)."""


class RecordSink(Protocol):
    def send(self, record: dict[str, Any]) -> list[str]:
        """Deliver one round record; return the node ids the platform has revoked."""

    def admitted(self) -> set[int] | None:
        """The node ids the platform admits now; None: no platform, every node may be sampled."""


class FileSink:
    """JSON lines appended to a file: for runs without a platform."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def send(self, record: dict[str, Any]) -> list[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, allow_nan=False) + "\n")
        return []

    def admitted(self) -> set[int] | None:
        return None


class LogSink:
    """Neither platform nor file configured: the record only goes to the ServerApp's log."""

    def send(self, record: dict[str, Any]) -> list[str]:
        log(INFO, "round record: %s", json.dumps(record, allow_nan=False))
        return []

    def admitted(self) -> set[int] | None:
        return None


class PlatformSink:
    """POSTs round records to the platform, retrying connection errors and 5xx for up to 60 s."""

    def __init__(self, platform_url: str, federation: str, token: str, deadline_s: float = POST_DEADLINE_S,
                 client: httpx.Client | None = None) -> None:
        quoted = urllib.parse.quote(federation, safe="")
        self.url = f"{platform_url.rstrip('/')}/v1/federations/{quoted}/rounds"
        self.admitted_url = f"{platform_url.rstrip('/')}/v1/federations/{quoted}/admitted"
        self.headers = {TOKEN_HEADER: token}
        self.deadline_s = deadline_s
        self.client = client or httpx.Client(timeout=10.0)
        self._admitted: tuple[float, set[int]] | None = None

    def admitted(self) -> set[int] | None:
        """The platform's admitted nodes (cached a second). When the platform cannot be reached the
        last answer serves; with no answer yet, the call retries until the deadline, then fails."""
        if self._admitted is not None and time.monotonic() - self._admitted[0] < ADMITTED_CACHE_S:
            return self._admitted[1]
        give_up = time.monotonic() + self.deadline_s
        while True:
            try:
                response = self.client.get(self.admitted_url, headers=self.headers)
                if response.status_code < 500:
                    break
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            if self._admitted is not None:
                log(WARNING, "admitted nodes: %s; using the last answer", problem)
                return self._admitted[1]
            if time.monotonic() > give_up:
                raise RecorderRejected(f"could not ask {self.admitted_url} which nodes are admitted: {problem}")
            time.sleep(1.0)
        if response.status_code >= 400:
            raise RecorderRejected(f"{self.admitted_url} answered HTTP {response.status_code}: {response.text[:300]}")
        nodes = {int(n) for n in response.json().get("admitted_nodes", [])}
        self._admitted = (time.monotonic(), nodes)
        return nodes

    def send(self, record: dict[str, Any]) -> list[str]:
        body = json.dumps(record, allow_nan=False)
        headers = {**self.headers, "Content-Type": "application/json"}
        give_up = time.monotonic() + self.deadline_s
        delay = 0.5
        while True:
            problem = self._try(body, headers)
            if isinstance(problem, list):
                return problem
            if time.monotonic() + delay > give_up:
                raise RecorderRejected(f"round {record['round']}: could not deliver the record to {self.url} "
                                       f"within {self.deadline_s:.0f} s: {problem}")
            log(WARNING, "round %s: record not delivered (%s); retrying in %.1f s", record["round"], problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    def _try(self, body: str, headers: dict[str, str]) -> list[str] | str:
        """The revoked node ids on success, or a description of a retryable problem."""
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as error:  # refused, reset, timed out: the platform may be restarting
            return f"{type(error).__name__}: {error}"
        if response.status_code >= 500:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code >= 400:
            log(ERROR, "the platform refused the round record: HTTP %s %s", response.status_code, response.text[:500])
            raise RecorderRejected(f"{self.url} answered HTTP {response.status_code}: {response.text[:500]}")
        return revoked_from_answer(response.content)


def revoked_from_answer(content: bytes) -> list[str]:
    """The node ids in the platform's answer {"revoked_nodes": [...]} (an empty body: none)."""
    if not content.strip():
        return []
    answer = json.loads(content)
    nodes = answer.get("revoked_nodes", []) if isinstance(answer, dict) else None
    if not isinstance(nodes, list) or not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in nodes):
        raise RecorderRejected(f"the platform's answer is not {{'revoked_nodes': [ids]}}: {content[:300]!r}")
    return [str(n) for n in nodes]


def make_sink(config: FederationConfig) -> RecordSink:
    if config.platform_url:
        return PlatformSink(config.platform_url, config.federation,
                            os.environ.get(TOKEN_VARIABLE) or config.recorder_token)
    if config.records_path:
        return FileSink(config.records_path)
    return LogSink()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def arrays_sha256(arrays: Sequence[np.ndarray]) -> str:
    """Digest of the model's bytes, arrays in order (C order, native dtype)."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def number(value: Any) -> float | int | None:
    """A metric as a JSON number (non-finite values, which JSON cannot carry, become null)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return None


def metric_dict(record: MetricRecord | None, leave_out: str = "") -> dict[str, Any]:
    if record is None:
        return {}
    return {key: number(value) for key, value in record.items() if key != leave_out and not isinstance(value, list)}


class AdmittedGrid(Grid):
    """The run's Grid, except that get_node_ids lists only the nodes the platform admits: what
    Flower's sampling (and its wait for min-available nodes) draws from."""

    def __init__(self, grid: Grid, admitted: Callable[[], set[int] | None]) -> None:
        self.grid = grid
        self.admitted = admitted

    def get_node_ids(self) -> Iterable[int]:
        nodes = list(self.grid.get_node_ids())
        allowed = self.admitted()
        return nodes if allowed is None else [n for n in nodes if n in allowed]

    # everything else is the run's Grid's
    def set_run(self, run: Any) -> None:
        self.grid.set_run(run)

    @property
    def run(self) -> Any:
        return self.grid.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        return self.grid.create_message(*args, **kwargs)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.grid.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.grid.send_and_receive(messages, timeout=timeout)


@dataclass
class RoundState:
    """What the Recorder collects during one round, until the record is sent."""

    server_round: int
    started_at: str
    messages: list[Message]
    sent: list[np.ndarray]
    updates: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    distances: list[list[float]] = field(default_factory=list)
    model: list[np.ndarray] | None = None
    train_metrics: dict[str, Any] = field(default_factory=dict)
    evaluate_metrics: dict[str, Any] = field(default_factory=dict)
    privacy: dict[str, Any] | None = None

    @property
    def sampled(self) -> list[int]:
        return [m.metadata.dst_node_id for m in self.messages]


class Recorder(Strategy):
    """Delegates every hook to `inner` and records each round (see the module docstring)."""

    def __init__(self, inner: Strategy, *, base: Strategy, privacy: ServerSidePrivacy | None,
                 config: FederationConfig, run_id: str, sink: RecordSink) -> None:
        self.inner = inner
        self.base = base          # the aggregation strategy itself, for its weights
        self.privacy = privacy    # the DP wrapper, for its per-round parameters
        self.config = config
        self.run_id = run_id
        self.sink = sink
        self.revoked: set[int] = set()
        self.state: RoundState | None = None
        self.records: list[dict[str, Any]] = []

    def summary(self) -> None:
        self.inner.summary()

    def start(self, grid: Grid, initial_arrays: ArrayRecord, num_rounds: int = 3, timeout: float = 3600,
              train_config: ConfigRecord | None = None, evaluate_config: ConfigRecord | None = None,
              evaluate_fn: EvaluateFn | None = None) -> Result:
        # the record is complete only after the server-side evaluation, which start() runs last
        return super().start(grid, initial_arrays, num_rounds, timeout, train_config, evaluate_config,
                             self._recording(evaluate_fn))

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        started_at = utc_now()
        grid = AdmittedGrid(grid, self.sink.admitted)
        messages = self._without_revoked(self.inner.configure_train(server_round, arrays, config, grid),
                                         "train", self.config.min_fit_clients)
        self.state = RoundState(server_round, started_at, messages, arrays.to_numpy_ndarrays())
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        state = self._state(server_round)
        replies = list(replies)
        malformed = {id(msg): problem for msg in replies
                     if not msg.has_error() and (problem := reply_problem(msg, state.sent, self._weighting_key()))}
        valid = [msg for msg in replies if not msg.has_error() and id(msg) not in malformed]
        # measured before aggregating: some strategies (FedMedian) empty the replies' records
        updates = [divergence.update(_arrays(msg), state.sent) for msg in valid]
        state.distances = divergence.pairwise_distances(updates).tolist()
        state.failures = self._failures(state, replies, valid, malformed)
        # a malformed reply would make Flower's strategies raise and end the run: leave it out
        usable = [msg for msg in replies if id(msg) not in malformed]
        arrays, metrics = self.inner.aggregate_train(server_round, usable)
        weights = aggregation_weights(self.base, valid)
        privacy_round = self.privacy.last_round if self.privacy is not None else None
        clipped = privacy_round.clipped if privacy_round is not None else {}
        state.updates = [
            {"node_id": str(msg.metadata.src_node_id),
             "num_examples": int(cast(float, _metrics(msg)[self._weighting_key()])),
             "metrics": metric_dict(_metrics(msg), leave_out=self._weighting_key()),
             "weight": weight, "update_norm": float(np.linalg.norm(u)),
             "clipped": bool(clipped.get(msg.metadata.src_node_id, False))}
            for msg, u, weight in zip(valid, updates, weights, strict=True)
        ]
        state.model = arrays.to_numpy_ndarrays() if arrays is not None else state.sent
        state.train_metrics = metric_dict(metrics)
        state.privacy = privacy_round.as_record() if privacy_round is not None else None
        return arrays, metrics

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        grid = AdmittedGrid(grid, self.sink.admitted)
        return self._without_revoked(self.inner.configure_evaluate(server_round, arrays, config, grid),
                                     "evaluate", self.config.min_evaluate_clients)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        metrics = self.inner.aggregate_evaluate(server_round, replies)
        self._state(server_round).evaluate_metrics = metric_dict(metrics)
        return metrics

    def _recording(self, evaluate_fn: EvaluateFn | None) -> EvaluateFn:
        def evaluate_and_record(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            result = evaluate_fn(server_round, arrays) if evaluate_fn is not None else None
            if server_round >= 1:  # round 0 is the initial model: nothing to record
                self._send(self._record(self._state(server_round), metric_dict(result)))
            return result

        return evaluate_and_record

    def _record(self, state: RoundState, server_metrics: dict[str, Any]) -> dict[str, Any]:
        model = state.model if state.model is not None else state.sent
        return {
            "federation": self.config.federation, "run_id": self.run_id, "round": state.server_round,
            "started_at": state.started_at, "ended_at": utc_now(), "strategy": self.config.strategy,
            "sampled_nodes": [str(n) for n in state.sampled],
            "updates": state.updates, "failures": state.failures, "distances": state.distances,
            "model": {"sha256": arrays_sha256(model), "parameters": int(sum(a.size for a in model))},
            "previous_model": {"sha256": arrays_sha256(state.sent)},
            "train_metrics": state.train_metrics, "evaluate_metrics": state.evaluate_metrics,
            "server_metrics": server_metrics, "privacy": state.privacy,
        }

    def _send(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        revoked = self.sink.send(record)
        newly = {int(n) for n in revoked} - self.revoked
        if newly:
            log(WARNING, "the platform revoked node(s) %s: they are not sampled from round %s on",
                sorted(newly), record["round"] + 1)
        self.revoked |= newly

    def _without_revoked(self, messages: Iterable[Message], phase: str, minimum: int) -> list[Message]:
        """The messages minus those addressed to revoked nodes (Flower samples from all online nodes)."""
        messages = list(messages)
        kept = [m for m in messages if m.metadata.dst_node_id not in self.revoked]
        if len(kept) < len(messages):
            dropped = sorted(m.metadata.dst_node_id for m in messages if m.metadata.dst_node_id in self.revoked)
            log(WARNING, "configure_%s: not sending to revoked node(s) %s", phase, dropped)
            if len(kept) < minimum:
                log(WARNING, "configure_%s: %d node(s) left, fewer than the minimum %d; proceeding with them",
                    phase, len(kept), minimum)
        return kept

    def _failures(self, state: RoundState, replies: list[Message], valid: list[Message],
                  malformed: dict[int, str]) -> list[dict[str, str]]:
        """Sampled nodes without a successful reply, with the reason where one came back.

        An error reply's src is the SuperLink, not the node: it is matched to the node by the id of
        the message it answers (the Grid sets ids on our messages when it pushes them); the rest are
        found by diffing the sampled nodes against the nodes that replied."""
        node_by_message = {m.metadata.message_id: m.metadata.dst_node_id
                           for m in state.messages if m.metadata.message_id}
        reasons: dict[int, str] = {}
        unattributed: list[str] = []
        for msg in replies:
            if msg.has_error():
                node = node_by_message.get(msg.metadata.reply_to_message_id)
                reason = f"[code {msg.error.code}] {msg.error.reason}"
                if node is None:
                    unattributed.append(reason)
                else:
                    reasons[node] = reason
        for msg in replies:
            if id(msg) in malformed:
                reasons[msg.metadata.src_node_id] = f"malformed reply: {malformed[id(msg)]}"
        succeeded = {msg.metadata.src_node_id for msg in valid}
        missing = [n for n in state.sampled if n not in succeeded]
        fallback = "; ".join(unattributed) if unattributed else "no reply within the round timeout"
        return [{"node_id": str(n), "reason": reasons.get(n, fallback)} for n in missing]

    def _state(self, server_round: int) -> RoundState:
        if self.state is None or self.state.server_round != server_round:
            raise RuntimeError(f"round {server_round}: aggregation before configure_train")
        return self.state

    def _weighting_key(self) -> str:
        return getattr(self.base, "weighted_by_key", "num-examples")


def reply_problem(msg: Message, sent: list[np.ndarray], weighting_key: str) -> str | None:
    """Why a train reply cannot be aggregated (None when it can): the ClientApp contract is one
    ArrayRecord shaped like the model sent and one MetricRecord with a numeric weighting key."""
    content = msg.content
    if len(content.array_records) != 1 or len(content.metric_records) != 1:
        return (f"expected one ArrayRecord and one MetricRecord, got {len(content.array_records)} and "
                f"{len(content.metric_records)}")
    weight = _metrics(msg).get(weighting_key)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
        return f"'{weighting_key}' must be a positive number, got {weight!r}"
    shapes = [a.shape for a in _arrays(msg)]
    if shapes != [a.shape for a in sent]:
        return f"array shapes {shapes} differ from the model's {[a.shape for a in sent]}"
    if not all(np.isfinite(a).all() for a in _arrays(msg)):
        return "arrays hold NaN or infinite values"
    return None


def _arrays(msg: Message) -> list[np.ndarray]:
    return next(iter(msg.content.array_records.values())).to_numpy_ndarrays()


def _metrics(msg: Message) -> MetricRecord:
    return next(iter(msg.content.metric_records.values()))


def server_evaluation(seed: int) -> EvaluateFn:
    """evaluate_fn: the global model's errors on clean validation fields of all quadrants."""
    x, y = task.global_validation(seed)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        return MetricRecord(dict(task.errors(arrays.to_numpy_ndarrays(), x, y)))

    return evaluate


def build_pipeline(config: FederationConfig, run_id: str, sink: RecordSink) -> Recorder:
    """Strategy -> (privacy) -> Recorder, as configured."""
    base = build_strategy(config)
    privacy = None
    if config.dp:
        privacy = ServerSidePrivacy(base, noise_multiplier=config.dp_noise_multiplier,
                                    clipping_norm=config.dp_clipping_norm, expected_clients=config.min_fit_clients,
                                    seed=config.seed, metric_privacy=config.metric_privacy)
    return Recorder(privacy or base, base=base, privacy=privacy, config=config, run_id=run_id, sink=sink)


def save_model(path: str, arrays: ArrayRecord) -> None:
    """The final weights as .npz (keys as in the ArrayRecord), written whole or not at all."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as out:
        np.savez(out, **{key: array.numpy() for key, array in arrays.items()})  # type: ignore[arg-type]
    os.replace(partial, target)


def run_federation(grid: Grid, config: FederationConfig, run_id: str, sink: RecordSink) -> Result:
    recorder = build_pipeline(config, run_id, sink)
    initial = ArrayRecord(task.initial_arrays())
    result = recorder.start(grid=grid, initial_arrays=initial, num_rounds=config.num_rounds,
                            timeout=config.round_timeout, train_config=ConfigRecord(),
                            evaluate_config=ConfigRecord(), evaluate_fn=server_evaluation(config.seed))
    if config.model_path:
        final = result.arrays if len(result.arrays) else initial
        save_model(config.model_path, final)
        log(INFO, "final model written to %s", config.model_path)
    return result


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = FederationConfig.from_run_config(context.run_config)
    run_federation(grid, config, str(context.run_id), make_sink(config))
