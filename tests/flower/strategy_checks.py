"""Offline checks of the Flower App's strategies, privacy and recorder, on the REAL classes.

Run with the Flower environment's python (flwr is not installed in the platform's):

    <flower-env>/bin/python tests/flower/strategy_checks.py CHECK [--json]

CHECK is one of dp-noise, metric-privacy, switches, fedavgopt, divergence, strategies, recorder
(or all).
Each check prints one JSON object (indented; one line with --json) and exits 0 when it holds, 1
when it does not. No SuperLink is involved: an in-process Grid hands the ServerApp's messages to
the real ClientApp (or to hand-made replies) and returns real flwr Messages.

How test Messages are made (the supported way, the one a ClientApp uses): the strategy's own
configure_train builds the instruction Messages (dst_node_id = a node of the Grid); a reply is
`Message(content, reply_to=instruction)`, which sets src_node_id to the instruction's dst_node_id.
Error replies are made by the SuperLink's own helper, so their src is the SuperLink (node 1).
flwr 1.42 stamps instruction Messages with the process's TaskIdentity (run id, node id, task id),
which flwr-serverapp sets before it calls the ServerApp; outside it, `as_serverapp()` sets it the
same way (as flwr.server.compat does for the SuperLink's node).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "federated" / "flower-app"
sys.path.insert(0, str(APP_DIR))

from ai4kg_flower import client_app, divergence  # noqa: E402
from ai4kg_flower.config import STRATEGIES, FederationConfig  # noqa: E402
from ai4kg_flower.server_app import Recorder, build_pipeline, run_federation  # noqa: E402
from ai4kg_flower.strategies import build_strategy  # noqa: E402
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.common.constant import SUPERLINK_NODE_ID  # noqa: E402
from flwr.serverapp import Grid  # noqa: E402
from flwr.supercore.run import Run  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

Handler = Callable[[Message], Message]
NODE_IDS = [7_000_000_000_000_000_001 + i for i in range(8)]  # 64-bit like Flower's


# --- building blocks ---------------------------------------------------------------------------

def as_serverapp(run_id: int = 42) -> None:
    """Give this process the identity flwr-serverapp gives a ServerApp (Message() needs it)."""
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID


def run_config(**overrides: Any) -> dict[str, Any]:
    """The app's default run config (from its pyproject.toml) with overrides (keys with '-' or '_')."""
    with (APP_DIR / "pyproject.toml").open("rb") as f:
        config = dict(tomllib.load(f)["tool"]["flwr"]["app"]["config"])
    for key, value in overrides.items():
        config[key.replace("_", "-")] = value
    return config


def federation(**overrides: Any) -> FederationConfig:
    return FederationConfig.from_run_config(run_config(**overrides))


class OfflineGrid(Grid):
    """An in-process Grid: a fixed set of online nodes; each pushed message is answered at once by
    `handler` (None: the caller makes replies itself and only configure_* is used)."""

    def __init__(self, node_ids: Iterable[int], handler: Handler | None = None) -> None:
        self.node_ids = list(node_ids)
        self.handler = handler
        self._run = Run.create_empty(run_id=42)
        self._replies: dict[str, Message] = {}
        self._counter = 0

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content=content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id,
                       ttl=ttl)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        if self.handler is None:
            raise RuntimeError("this OfflineGrid has no handler: it cannot deliver messages")
        ids = []
        for msg in messages:
            self._counter += 1
            assign_message_id(msg, f"offline-{self._counter}")
            self._replies[msg.metadata.message_id] = self.handler(msg)
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))


def assign_message_id(msg: Message, message_id: str) -> None:
    """What Flower's HttpGrid does on push (Metadata has no public setter for message_id)."""
    msg.metadata.__dict__["_message_id"] = message_id


def client_handler(config: FederationConfig, node_configs: dict[int, dict[str, Any]]) -> Handler:
    """Delivers a message to the real ClientApp as node `dst_node_id` would run it."""
    def handle(msg: Message) -> Message:
        node = msg.metadata.dst_node_id
        context = Context(run_id=42, node_id=node, node_config=node_configs[node], state=RecordDict(),
                          run_config=config.to_run_config())
        return client_app.app(msg, context)
    return handle


def quadrant_nodes(count: int = 4, poison: dict[int, float] | None = None) -> dict[int, dict[str, Any]]:
    """Node id -> node config, one quadrant per node (optionally with the poison drill)."""
    configs = {}
    for i in range(count):
        configs[NODE_IDS[i]] = {"partition-id": i, "num-partitions": count}
        if poison and i in poison:
            configs[NODE_IDS[i]]["poison-scale"] = poison[i]
    return configs


class ListSink:
    """Collects round records in memory (and revokes nothing)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def send(self, record: dict[str, Any]) -> list[str]:
        json.dumps(record, allow_nan=False)  # what the platform would receive must be plain JSON
        self.records.append(record)
        return []

    def admitted(self) -> set[int] | None:
        return None


def reply(instruction: Message, arrays: list[np.ndarray], num_examples: int, **metrics: float) -> Message:
    """A successful train reply, made the way a ClientApp makes it."""
    content = RecordDict({
        "arrays": ArrayRecord({str(i): Array(a) for i, a in enumerate(arrays)}),
        "metrics": MetricRecord({"num-examples": num_examples, "mse": 1.0, "mae": 1.0, **metrics}),
    })
    return Message(content=content, reply_to=instruction)


def superlink_error(instruction: Message) -> Message:
    """The error reply the SuperLink sends for an unavailable node (src = the SuperLink)."""
    # imported here: the SuperLink's state module takes seconds to import and only dp-noise needs it
    from flwr.server.superlink.linkstate.utils import create_message_error_unavailable_res_message

    return create_message_error_unavailable_res_message(instruction.metadata, "node_unavail")


def aggregate_once(config: FederationConfig, global_arrays: list[np.ndarray],
                   client_arrays: list[list[np.ndarray]], with_error: bool = False
                   ) -> tuple[list[np.ndarray], Recorder]:
    """One configure_train + aggregate_train through the configured pipeline on hand-made replies.

    Replies are rebuilt on every call: some strategies (FedMedian) consume the replies' arrays."""
    recorder = build_pipeline(config, "offline", ListSink())
    n = len(client_arrays) + (1 if with_error else 0)
    grid = OfflineGrid(NODE_IDS[:n])
    messages = list(recorder.configure_train(1, ArrayRecord([a.copy() for a in global_arrays]), ConfigRecord(), grid))
    for i, msg in enumerate(messages):
        assign_message_id(msg, f"m{i}")
    by_node = {m.metadata.dst_node_id: m for m in messages}
    replies = [reply(by_node[NODE_IDS[i]], arrays, 100) for i, arrays in enumerate(client_arrays)]
    if with_error:
        replies.append(superlink_error(by_node[NODE_IDS[len(client_arrays)]]))
    aggregated, _ = recorder.aggregate_train(1, replies)
    if aggregated is None:
        raise AssertionError("aggregation returned no arrays")
    return aggregated.to_numpy_ndarrays(), recorder


def noise_problem(size: int = 20_000, clients: int = 4, seed: int = 1
                  ) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """A global model of `size` parameters (two arrays) and client replies with small updates."""
    rng = np.random.default_rng(seed)
    global_arrays = [rng.normal(size=(size // 4, 3)), rng.normal(size=size // 4)]
    replies = [[g + rng.normal(0.0, 0.005 * (k + 1), size=g.shape) for g in global_arrays] for k in range(clients)]
    return global_arrays, replies


def measured_noise(config_on: FederationConfig, config_off: FederationConfig
                   ) -> tuple[np.ndarray, Recorder, list[np.ndarray], list[np.ndarray]]:
    global_arrays, replies = noise_problem()
    noisy, recorder = aggregate_once(config_on, global_arrays, replies)
    plain, _ = aggregate_once(config_off, global_arrays, replies)
    plain_again, _ = aggregate_once(config_off, global_arrays, replies)
    return divergence.flat(noisy) - divergence.flat(plain), recorder, plain, plain_again


def noise_figures(diff: np.ndarray, sigma: float) -> dict[str, Any]:
    from scipy import stats  # only the two noise checks need it (slow to import)

    std = float(np.std(diff, ddof=1))
    ks = stats.kstest(diff, "norm", args=(0.0, sigma))
    return {"expected_sigma": sigma, "measured_std": std, "relative_error": abs(std - sigma) / sigma,
            "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue), "parameters": int(diff.size)}


# --- checks ------------------------------------------------------------------------------------

def check_dp_noise() -> dict[str, Any]:
    z, c, m = 1.5, 100.0, 4
    on = federation(dp=True, dp_noise_multiplier=z, dp_clipping_norm=c, min_fit_clients=m,
                    min_available_clients=m, seed=11)
    off = federation(dp=False, dp_noise_multiplier=z, dp_clipping_norm=c, min_fit_clients=m,
                     min_available_clients=m, seed=11)
    diff, recorder, plain, plain_again = measured_noise(on, off)
    figures = noise_figures(diff, z * c / m)
    privacy = recorder.privacy.last_round if recorder.privacy else None
    # an unavailable node's error reply is dropped, the other four still aggregated (Flower's
    # own wrapper would skip the whole round)
    global_arrays, replies = noise_problem()
    _, with_error = aggregate_once(on, global_arrays, replies, with_error=True)
    error_round = with_error.privacy.last_round if with_error.privacy else None
    # reproducible: the same seed gives the same noise, another seed other noise
    again, _ = measured_noise(on, off)[:2]
    other, _ = measured_noise(federation(**{**on.to_run_config(), "seed": 12}), off)[:2]
    figures.update({
        "dp_off_identical": all(np.array_equal(a, b) for a, b in zip(plain, plain_again, strict=True)),
        "recorded_sigma": privacy.sigma if privacy else None,
        "clipped": sorted(privacy.clipped.values()) if privacy else None,
        "mechanism": privacy.mechanism if privacy else None,
        "error_reply_dropped_and_rest_aggregated": bool(error_round and error_round.sampled_clients == m),
        "same_seed_same_noise": bool(np.array_equal(diff, again)),
        "other_seed_other_noise": not bool(np.array_equal(diff, other)),
    })
    figures["ok"] = bool(
        figures["relative_error"] < 0.05 and figures["ks_pvalue"] > 0.01 and figures["dp_off_identical"]
        and privacy is not None and abs(privacy.sigma - z * c / m) < 1e-12 and not any(privacy.clipped.values())
        and privacy.mechanism == "fixed-clipping" and figures["error_reply_dropped_and_rest_aggregated"]
        and figures["same_seed_same_noise"] and figures["other_seed_other_noise"])
    return figures


def check_metric_privacy() -> dict[str, Any]:
    z, c, m = 1.5, 100.0, 4
    common = dict(dp_noise_multiplier=z, dp_clipping_norm=c, min_fit_clients=m, min_available_clients=m, seed=5)
    on = federation(dp=True, metric_privacy=True, **common)
    off = federation(dp=False, metric_privacy=True, **common)
    diff, recorder, _, _ = measured_noise(on, off)
    global_arrays, replies = noise_problem()
    updates = [divergence.update(r, global_arrays) for r in replies]
    d = max(float(np.linalg.norm(a - b)) for a in updates for b in updates)
    figures = noise_figures(diff, z * c / (m * d))
    privacy = recorder.privacy.last_round if recorder.privacy else None
    fixed_sigma = z * c / m
    figures.update({"max_distance": d, "recorded_max_distance": privacy.max_distance if privacy else None,
                    "recorded_sigma": privacy.sigma if privacy else None, "fixed_clipping_sigma": fixed_sigma,
                    "mechanism": privacy.mechanism if privacy else None})
    figures["ok"] = bool(
        privacy is not None and privacy.mechanism == "metric-privacy" and privacy.max_distance is not None
        and abs(privacy.max_distance - d) < 1e-9 and figures["relative_error"] < 0.05
        and figures["ks_pvalue"] > 0.01 and abs(figures["measured_std"] - fixed_sigma) / fixed_sigma > 0.2)
    return figures


def sampled(config: FederationConfig, online: int, wait_s: float = 2.0) -> int | None:
    """How many nodes configure_train samples with `online` nodes, or None if it is still waiting
    after wait_s (Flower's sample_nodes waits without a deadline for min_available nodes)."""
    outcome: list[int] = []
    strategy = build_strategy(config)
    grid = OfflineGrid(NODE_IDS[:online])

    def configure() -> None:
        outcome.append(len(list(strategy.configure_train(1, ArrayRecord([np.zeros(3)]), ConfigRecord(), grid))))

    thread = threading.Thread(target=configure, daemon=True)
    thread.start()
    thread.join(wait_s)
    return outcome[0] if outcome else None


def rejected(**overrides: Any) -> str | None:
    try:
        federation(**overrides)
    except ValueError as error:
        return str(error)
    return None


def check_switches() -> dict[str, Any]:
    global_arrays, replies = noise_problem(size=400)
    base = dict(dp_noise_multiplier=1.0, dp_clipping_norm=50.0, min_fit_clients=4, min_available_clients=4)
    dp_on, dp_on_recorder = aggregate_once(federation(dp=True, **base), global_arrays, replies)
    dp_off, dp_off_recorder = aggregate_once(federation(dp=False, **base), global_arrays, replies)
    _, metric_recorder = aggregate_once(federation(dp=True, metric_privacy=True, **base), global_arrays, replies)
    fixed_sigma = dp_on_recorder.privacy.last_round.sigma if dp_on_recorder.privacy else None
    metric_sigma = metric_recorder.privacy.last_round.sigma if metric_recorder.privacy else None
    fedavg_mean = np.average([divergence.flat(r) for r in replies], axis=0)
    figures: dict[str, Any] = {
        "dp": {"on_differs_from_fedavg": not np.allclose(divergence.flat(dp_on), fedavg_mean),
               "off_equals_fedavg": bool(np.allclose(divergence.flat(dp_off), fedavg_mean)),
               "off_has_no_privacy_wrapper": dp_off_recorder.privacy is None},
        "metric_privacy": {"fixed_sigma": fixed_sigma, "metric_sigma": metric_sigma},
        "min_fit_clients": {
            "online_4_fraction_0.25_min_fit_3": sampled(federation(fraction_fit=0.25, min_fit_clients=3,
                                                                   min_available_clients=4), online=4),
            "online_4_fraction_0.25_min_fit_2": sampled(federation(fraction_fit=0.25, min_fit_clients=2,
                                                                   min_available_clients=4), online=4)},
        "min_available_clients": {
            "online_2_min_available_3": sampled(federation(min_fit_clients=2, min_available_clients=3), online=2),
            "online_2_min_available_2": sampled(federation(min_fit_clients=2, min_available_clients=2), online=2)},
        "mapping": _sampling_mapping(),
        "rejected": {"dp_string_true": rejected(dp="true"),
                     "metric_privacy_int_1": rejected(metric_privacy=1),
                     "min_fit_above_min_available": rejected(min_fit_clients=3, min_available_clients=2),
                     "strategy_uppercase": rejected(strategy="FedAvg")},
    }
    rejections = figures["rejected"]
    figures["ok"] = bool(
        figures["dp"]["on_differs_from_fedavg"] and figures["dp"]["off_equals_fedavg"]
        and figures["dp"]["off_has_no_privacy_wrapper"]
        and fixed_sigma is not None and metric_sigma is not None and abs(fixed_sigma - metric_sigma) > 1e-9
        and figures["min_fit_clients"] == {"online_4_fraction_0.25_min_fit_3": 3, "online_4_fraction_0.25_min_fit_2": 2}
        and figures["min_available_clients"] == {"online_2_min_available_3": None, "online_2_min_available_2": 2}
        and figures["mapping"]["ok"]
        and rejections["dp_string_true"] is not None and "'dp'" in rejections["dp_string_true"]
        and rejections["metric_privacy_int_1"] is not None and "'metric-privacy'" in rejections["metric_privacy_int_1"]
        and rejections["min_fit_above_min_available"] is not None and rejections["strategy_uppercase"] is not None)
    return figures


def _sampling_mapping() -> dict[str, Any]:
    """min-fit-clients must reach min_train_nodes and min-available-clients min_available_nodes."""
    strategy = build_strategy(federation(min_fit_clients=2, min_evaluate_clients=1, min_available_clients=5))
    found = {"min_train_nodes": strategy.min_train_nodes, "min_evaluate_nodes": strategy.min_evaluate_nodes,
             "min_available_nodes": strategy.min_available_nodes}
    return {**found, "ok": found == {"min_train_nodes": 2, "min_evaluate_nodes": 1, "min_available_nodes": 5}}


def simulate(strategy: str, rounds: int, seed: int, poison: dict[int, float] | None = None,
             **overrides: Any) -> tuple[dict[str, Any], ListSink, list[np.ndarray]]:
    """A whole federation offline: the real ServerApp loop (run_federation) and ClientApp."""
    random.seed(seed)  # Flower samples with the random module
    config = federation(strategy=strategy, num_rounds=rounds, seed=seed, min_fit_clients=4,
                        min_evaluate_clients=4, min_available_clients=4, **overrides)
    grid = OfflineGrid(NODE_IDS[:4], client_handler(config, quadrant_nodes(4, poison)))
    sink = ListSink()
    result = run_federation(grid, config, "offline", sink)
    server = {key: dict(value) for key, value in result.evaluate_metrics_serverapp.items()}
    return server, sink, result.arrays.to_numpy_ndarrays()


def check_fedavgopt() -> dict[str, Any]:
    rounds, seed = 10, 3
    fedavg, _, _ = simulate("fedavg", rounds, seed)
    fedavgopt, sink, _ = simulate("fedavgopt", rounds, seed)
    weights = {u["node_id"]: u["weight"] for u in sink.records[-1]["updates"]}
    noisy_node = str(NODE_IDS[3])  # partition 3: the badly calibrated radar
    figures = {"rounds": rounds, "seed": seed,
               "fedavg_final_validation_mse": fedavg[rounds]["mse"],
               "fedavgopt_final_validation_mse": fedavgopt[rounds]["mse"],
               "initial_validation_mse": fedavg[0]["mse"],
               "fedavgopt_last_round_weights": weights,
               "noisy_quadrant_weight": weights[noisy_node]}
    figures["ok"] = bool(figures["fedavgopt_final_validation_mse"] <= figures["fedavg_final_validation_mse"]
                         and len(sink.records) == rounds)
    return figures


def check_divergence() -> dict[str, Any]:
    poisoned = 1
    _, sink, _ = simulate("fedavg", 1, seed=2, poison={poisoned: 10.0})
    record = sink.records[0]
    order = [u["node_id"] for u in record["updates"]]
    medians = divergence.median_distance_to_others(np.array(record["distances"]))
    by_node = dict(zip(order, medians.tolist(), strict=True))
    target = str(NODE_IDS[poisoned])
    others = [v for k, v in by_node.items() if k != target]
    figures = {"poisoned_node": target, "median_distance_by_node": by_node,
               "poisoned_median": by_node[target], "median_of_others": float(np.median(others)),
               "update_norms": {u["node_id"]: u["update_norm"] for u in record["updates"]}}
    figures["ratio"] = figures["poisoned_median"] / figures["median_of_others"]
    figures["ok"] = bool(figures["ratio"] > 3.0)
    return figures


def check_strategies() -> dict[str, Any]:
    results: dict[str, Any] = {}
    models: dict[str, np.ndarray] = {}
    for name in STRATEGIES:
        server, sink, final = simulate(name, 1, seed=4, proximal_mu=0.1 if name == "fedprox" else 0.0)
        models[name] = divergence.flat(final)
        record = sink.records[0] if sink.records else {}
        results[name] = {
            "records": len(sink.records),
            "model_changed": record.get("model", {}).get("sha256") != record.get("previous_model", {}).get("sha256"),
            "updates": len(record.get("updates", [])),
            "validation_mse_before": server[0]["mse"], "validation_mse_after": server[1]["mse"],
            "weights": [u["weight"] for u in record.get("updates", [])],
        }
    # FedOpt's server SGD from the zero model: x1 = 0 + eta·m1 with m1 = (1 - beta_1)·Δ and Δ the
    # FedAvg aggregate, so the FedOpt model is FedAvg's scaled by eta·(1 - beta_1)
    defaults = federation()
    factor = defaults.eta * (1 - defaults.beta_1)
    fedopt_step = bool(np.allclose(models["fedopt"], factor * models["fedavg"], rtol=1e-9, atol=1e-12))
    ok = fedopt_step and all(r["records"] == 1 and r["model_changed"] and r["updates"] == 4
                             and r["validation_mse_after"] < r["validation_mse_before"] for r in results.values())
    return {"strategies": results, "fedopt_step_is_eta_times_momentum": fedopt_step, "ok": ok}


RECORD_KEYS = {"federation", "run_id", "round", "started_at", "ended_at", "strategy", "sampled_nodes", "updates",
               "failures", "distances", "model", "previous_model", "train_metrics", "evaluate_metrics",
               "server_metrics", "privacy"}
UPDATE_KEYS = {"node_id", "num_examples", "metrics", "weight", "update_norm", "clipped"}


class RevokingSink(ListSink):
    """Answers the first record the way the platform does after revoking `node`."""

    def __init__(self, node: int) -> None:
        super().__init__()
        self.node = node

    def send(self, record: dict[str, Any]) -> list[str]:
        super().send(record)
        return [str(self.node)] if record["round"] == 1 else []


def misbehaving(handler: Handler, unavailable: tuple[int, int], malformed: tuple[int, int]) -> Handler:
    """`handler`, except for two (node, round) train messages: one gets the SuperLink's "node
    unavailable" error reply (what a node unregistered mid-round produces), one a reply whose
    array has the wrong shape (a broken client)."""
    def handle(msg: Message) -> Message:
        here = (msg.metadata.dst_node_id, msg.content["config"].get("server-round"))
        if msg.metadata.message_type == "train" and here == unavailable:
            return superlink_error(msg)
        if msg.metadata.message_type == "train" and here == malformed:
            return reply(msg, [np.zeros(4), np.zeros(1)], 100)
        return handler(msg)
    return handle


def record_schema_problems(record: dict[str, Any]) -> list[str]:
    problems = []
    if set(record) != RECORD_KEYS:
        problems.append(f"keys {sorted(set(record) ^ RECORD_KEYS)}")
    if not all(isinstance(n, str) for n in record["sampled_nodes"]):
        problems.append("sampled_nodes not strings")
    for update in record["updates"]:
        if set(update) != UPDATE_KEYS or not isinstance(update["node_id"], str):
            problems.append(f"update {update}")
    if len(record["distances"]) != len(record["updates"]):
        problems.append("distances not in the order/size of updates")
    for stamp in ("started_at", "ended_at"):
        if not (len(record[stamp]) == 20 and record[stamp].endswith("Z") and record[stamp][10] == "T"):
            problems.append(f"{stamp} {record[stamp]}")
    return problems


def check_recorder() -> dict[str, Any]:
    """Revocation, failure attribution, malformed replies and the platform POST (retry on 5xx,
    fail on 4xx): round 1 all four nodes; the platform revokes node 0 in its answer; round 2 node 2
    is unavailable (SuperLink error reply); round 3 node 3 replies with a wrongly shaped array."""
    revoked, unavailable, broken = NODE_IDS[0], NODE_IDS[2], NODE_IDS[3]
    random.seed(9)
    config = federation(strategy="fedavgopt", num_rounds=3, dp=True, dp_noise_multiplier=0.01, min_fit_clients=4,
                        min_evaluate_clients=2, min_available_clients=4, seed=9)
    handler = misbehaving(client_handler(config, quadrant_nodes(4)), (unavailable, 2), (broken, 3))
    sink = RevokingSink(revoked)
    run_federation(OfflineGrid(NODE_IDS[:4], handler), config, "offline", sink)
    rounds = sink.records
    figures: dict[str, Any] = {
        "records": len(rounds),
        "sampled_per_round": [len(r["sampled_nodes"]) for r in rounds],
        "revoked_sampled_after_round_1": any(str(revoked) in r["sampled_nodes"] for r in rounds[1:]),
        "round_2_failures": rounds[1]["failures"] if len(rounds) > 1 else None,
        "round_2_updates": len(rounds[1]["updates"]) if len(rounds) > 1 else None,
        "round_2_privacy_clients": (rounds[1]["privacy"] or {}).get("sampled_clients") if len(rounds) > 1 else None,
        "round_3_failures": rounds[2]["failures"] if len(rounds) > 2 else None,
        "round_3_updates": len(rounds[2]["updates"]) if len(rounds) > 2 else None,
        "schema_problems": [p for r in rounds for p in record_schema_problems(r)],
    }
    figures["platform"] = platform_exchange()
    failures = figures["round_2_failures"] or []
    figures["ok"] = bool(
        figures["records"] == 3 and figures["sampled_per_round"] == [4, 3, 3]
        and not figures["revoked_sampled_after_round_1"]
        and [f["node_id"] for f in failures] == [str(unavailable)] and "heartbeat" in failures[0]["reason"]
        and figures["round_2_updates"] == 2 and figures["round_2_privacy_clients"] == 2
        and [f["node_id"] for f in figures["round_3_failures"] or []] == [str(broken)]
        and "malformed" in (figures["round_3_failures"] or [{}])[0].get("reason", "")
        and figures["round_3_updates"] == 2
        and not figures["schema_problems"] and figures["platform"]["ok"])
    return figures


def platform_exchange() -> dict[str, Any]:
    """PlatformSink against a loopback HTTP server: 503 then 200 (retried), then 401 (fails); the
    admitted nodes it reads, and the Grid that lets sampling see only those."""
    import http.server

    from ai4kg_flower.server_app import AdmittedGrid, PlatformSink, RecorderRejected

    seen: list[dict[str, Any]] = []
    answers = [(503, b"busy"), (200, b'{"revoked_nodes": ["12345678901234567890"]}'), (401, b"bad token")]

    class Platform(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "authorization": self.headers["X-Recorder-Token"],
                         "round": json.loads(body)["round"]})
            status, answer = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_GET(self) -> None:  # noqa: N802
            asked.append((self.path, self.headers["X-Recorder-Token"]))
            answer = b'{"admitted_nodes": ["1", "3"], "revoked_nodes": ["2"]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    asked: list[tuple[str, str]] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Platform)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        sink = PlatformSink(url, "fed/one", "secret-token", deadline_s=10)
        revoked = sink.send({"round": 1})
        sampled_from = list(AdmittedGrid(OfflineGrid([1, 2, 3]), sink.admitted).get_node_ids())
        try:
            sink.send({"round": 2})
            rejected_4xx = False
        except RecorderRejected:
            rejected_4xx = True
    finally:
        server.shutdown()
        server.server_close()
    try:  # the server is gone: connection refused until the deadline, then the run must fail
        PlatformSink(url, "fed", "t", deadline_s=1.5).send({"round": 3})
        unreachable_fails = False
    except RecorderRejected:
        unreachable_fails = True
    result = {"requests": seen, "revoked": revoked, "rejected_on_4xx": rejected_4xx,
              "unreachable_fails_after_deadline": unreachable_fails, "admitted_asked": asked,
              "sampled_from": sampled_from}
    result["ok"] = bool(
        len(seen) == 3 and all(r["path"] == "/v1/federations/fed%2Fone/rounds" for r in seen)
        and all(r["authorization"] == "secret-token" for r in seen)
        and asked == [("/v1/federations/fed%2Fone/admitted", "secret-token")] and sampled_from == [1, 3]
        and revoked == ["12345678901234567890"] and rejected_4xx and unreachable_fails)
    return result


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "dp-noise": check_dp_noise,
    "metric-privacy": check_metric_privacy,
    "switches": check_switches,
    "fedavgopt": check_fedavgopt,
    "divergence": check_divergence,
    "strategies": check_strategies,
    "recorder": check_recorder,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=[*CHECKS, "all"])
    parser.add_argument("--json", action="store_true", help="print each result as one line of JSON")
    args = parser.parse_args(argv)
    as_serverapp()
    names = list(CHECKS) if args.check == "all" else [args.check]
    ok = True
    for name in names:
        try:
            result = {"check": name, **CHECKS[name]()}
        except Exception as error:  # a crash is a failed check, reported like one
            result = {"check": name, "ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(result, sort_keys=False, default=str, indent=None if args.json else 2), flush=True)
        ok = ok and bool(result["ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
