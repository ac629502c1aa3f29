"""The ClientApp: local training and evaluation on one radar quadrant.

Node config (flower-supernode --node-config "partition-id=I num-partitions=N [poison-scale=S]"):
- partition-id (int): which quadrant's data this node holds.
- num-partitions (int): how many partitions the federation has (partition-id must be below it).
- poison-scale (float, default 1.0): a ROBUSTNESS DRILL, not a feature. The node multiplies its
  update (trained weights - received weights) by this factor before replying, imitating a broken
  or malicious client, so that divergence monitoring (pairwise update distances in the round
  records) and robust aggregation (FedAvgOpt, FedMedian, DP clipping) can be tested end to end.

Replies hold exactly one ArrayRecord "arrays" (train only) and one MetricRecord "metrics" with
"num-examples", as Flower's FedAvg-family strategies require.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from . import task
from .config import FederationConfig

app = ClientApp()


@dataclass(frozen=True)
class NodeSettings:
    """This node's place in the federation, from its node config."""

    partition_id: int
    num_partitions: int
    poison_scale: float

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, Any]) -> NodeSettings:
        partition_id = _node_int(node_config, "partition-id")
        num_partitions = _node_int(node_config, "num-partitions")
        if not 0 <= partition_id < num_partitions:
            raise ValueError(f"node config: 'partition-id' must be in [0, num-partitions={num_partitions}), "
                             f"got {partition_id}")
        scale = node_config.get("poison-scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise ValueError(f"node config: 'poison-scale' must be a number, got {scale!r}")
        return cls(partition_id, num_partitions, float(scale))


def _node_int(node_config: Mapping[str, Any], key: str) -> int:
    if key not in node_config:
        raise ValueError(f"node config: '{key}' is missing (flower-supernode --node-config \"{key}=...\")")
    value = node_config[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"node config: '{key}' must be an int, got {value!r}")
    return value


def local_update(received: list[np.ndarray], data: task.Partition, config: FederationConfig,
                 proximal_mu: float, poison_scale: float) -> list[np.ndarray]:
    """Train from the received weights; scale the update when the node runs the poison drill."""
    trained = task.train(received, data, config.local_epochs, config.learning_rate, proximal_mu)
    if poison_scale == 1.0:
        return trained
    return [r + poison_scale * (t - r) for t, r in zip(trained, received, strict=True)]


def train_reply(msg: Message, context: Context) -> Message:
    """Train on this node's partition and reply with the new weights and training metrics."""
    config = FederationConfig.from_run_config(context.run_config)
    node = NodeSettings.from_node_config(context.node_config)
    received_record = msg.content.array_records["arrays"]
    received = received_record.to_numpy_ndarrays()
    server_config = msg.content.config_records.get("config", ConfigRecord())
    # FedProx sends its proximal weight; every other strategy trains plain local GD
    proximal_mu = float(cast(float, server_config.get("proximal-mu", 0.0)))
    data = task.load_partition(node.partition_id, config.seed)
    weights = local_update(received, data, config, proximal_mu, node.poison_scale)
    metrics = task.errors(weights, data.x_train, data.y_train)
    # the same array keys as received: FedOpt-family steps match arrays by key
    reply = RecordDict({
        "arrays": ArrayRecord(dict(zip(received_record.keys(), (Array(w) for w in weights), strict=True))),
        "metrics": MetricRecord({"num-examples": len(data.y_train), **metrics}),
    })
    return Message(content=reply, reply_to=msg)


def evaluate_reply(msg: Message, context: Context) -> Message:
    """Evaluate the received global model on this node's held-out transitions."""
    config = FederationConfig.from_run_config(context.run_config)
    node = NodeSettings.from_node_config(context.node_config)
    weights = msg.content.array_records["arrays"].to_numpy_ndarrays()
    data = task.load_partition(node.partition_id, config.seed)
    metrics = task.errors(weights, data.x_test, data.y_test)
    reply = RecordDict({"metrics": MetricRecord({"num-examples": len(data.y_test), **metrics})})
    return Message(content=reply, reply_to=msg)


app.train()(train_reply)
app.evaluate()(evaluate_reply)
