"""ClientApp (Message API)."""
import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedapp.task import load_partition, mse

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    w = msg.content["arrays"].to_numpy_ndarrays()[0].copy()
    pid = int(context.node_config["partition-id"])
    x, y = load_partition(pid)
    lr = float(context.run_config["lr"])
    for _ in range(int(context.run_config["local-epochs"])):
        w -= lr * (2 / len(y)) * x.T @ (x @ w - y)
    content = RecordDict({
        "arrays": ArrayRecord([w]),
        "metrics": MetricRecord({"num-examples": len(y), "train-loss": mse(w, x, y),
                                 "partition-id": pid}),
    })
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    w = msg.content["arrays"].to_numpy_ndarrays()[0]
    x, y = load_partition(int(context.node_config["partition-id"]))
    content = RecordDict({"metrics": MetricRecord({"num-examples": len(y),
                                                   "eval-loss": mse(w, x, y)})})
    return Message(content=content, reply_to=msg)
