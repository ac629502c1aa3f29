"""The run configuration of a federation, read from Flower's `context.run_config` and validated.

Every key has one type and one rule. A wrong type is an error, never coerced: the upstream AI4EOSC
server compared the strings it was given with `is True`, so its privacy switches never turned on;
here `dp = "true"` is refused with a message naming the key. Ints are not bools (Python's bool is
an int subclass, so that is checked explicitly); a float key takes an int (TOML `1` for `1.0`).

The upstream server also swapped min_fit_clients and min_available_clients. The mapping onto
Flower's names is spelled out once, in `strategy_sampling()`: min-fit-clients -> min_train_nodes,
min-evaluate-clients -> min_evaluate_nodes, min-available-clients -> min_available_nodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

STRATEGIES = ("fedavg", "fedavgm", "fedmedian", "fedprox", "fedopt", "fedadam", "fedyogi", "fedavgopt")
METRICS = ("mse", "mae")


@dataclass(frozen=True)
class Rule:
    """How one run-config key is checked: its type, and a predicate with its wording."""

    kind: type
    holds: Callable[[Any], bool]
    says: str


def _any(_: Any) -> bool:
    return True


def _rule(kind: type, holds: Callable[[Any], bool] = _any, says: str = "") -> Rule:
    return Rule(kind, holds, says)


# key -> (field name, rule); the order is the order of FederationConfig's fields
RULES: dict[str, tuple[str, Rule]] = {
    "federation": ("federation", _rule(str)),
    "platform-url": ("platform_url", _rule(str, lambda v: v == "" or v.startswith(("http://", "https://")),
                                          'must be "" or an http(s) URL')),
    "recorder-token": ("recorder_token", _rule(str)),
    "records-path": ("records_path", _rule(str)),
    "model-path": ("model_path", _rule(str)),
    "num-rounds": ("num_rounds", _rule(int, lambda v: v >= 1, "must be >= 1")),
    "strategy": ("strategy", _rule(str, lambda v: v in STRATEGIES, f"must be one of {', '.join(STRATEGIES)}")),
    "min-fit-clients": ("min_fit_clients", _rule(int, lambda v: v >= 1, "must be >= 1")),
    "min-evaluate-clients": ("min_evaluate_clients", _rule(int, lambda v: v >= 0, "must be >= 0")),
    "min-available-clients": ("min_available_clients", _rule(int, lambda v: v >= 1, "must be >= 1")),
    "fraction-fit": ("fraction_fit", _rule(float, lambda v: 0 < v <= 1, "must be in (0, 1]")),
    "fraction-evaluate": ("fraction_evaluate", _rule(float, lambda v: 0 <= v <= 1, "must be in [0, 1]")),
    "metric": ("metric", _rule(str, lambda v: v in METRICS, f"must be one of {', '.join(METRICS)}")),
    "proximal-mu": ("proximal_mu", _rule(float, lambda v: v >= 0, "must be >= 0")),
    "server-learning-rate": ("server_learning_rate", _rule(float, lambda v: v > 0, "must be > 0")),
    "server-momentum": ("server_momentum", _rule(float, lambda v: v >= 0, "must be >= 0")),
    "eta": ("eta", _rule(float, lambda v: v > 0, "must be > 0")),
    "eta-l": ("eta_l", _rule(float, lambda v: v > 0, "must be > 0")),
    "beta-1": ("beta_1", _rule(float, lambda v: 0 <= v <= 1, "must be in [0, 1]")),
    "beta-2": ("beta_2", _rule(float, lambda v: 0 <= v <= 1, "must be in [0, 1]")),
    "tau": ("tau", _rule(float, lambda v: v > 0, "must be > 0")),
    "dp": ("dp", _rule(bool)),
    "metric-privacy": ("metric_privacy", _rule(bool)),
    "dp-noise-multiplier": ("dp_noise_multiplier", _rule(float, lambda v: v >= 0, "must be >= 0")),
    "dp-clipping-norm": ("dp_clipping_norm", _rule(float, lambda v: v > 0, "must be > 0")),
    "seed": ("seed", _rule(int)),
    "local-epochs": ("local_epochs", _rule(int, lambda v: v >= 1, "must be >= 1")),
    "learning-rate": ("learning_rate", _rule(float, lambda v: v > 0, "must be > 0")),
    "round-timeout": ("round_timeout", _rule(float, lambda v: v > 0, "must be > 0 (seconds)")),
}


@dataclass(frozen=True)
class FederationConfig:
    """One federation run's settings, typed; build it with `FederationConfig.from_run_config`."""

    federation: str
    platform_url: str
    recorder_token: str
    records_path: str
    model_path: str
    num_rounds: int
    strategy: str
    min_fit_clients: int
    min_evaluate_clients: int
    min_available_clients: int
    fraction_fit: float
    fraction_evaluate: float
    metric: str
    proximal_mu: float
    server_learning_rate: float
    server_momentum: float
    eta: float
    eta_l: float
    beta_1: float
    beta_2: float
    tau: float
    dp: bool
    metric_privacy: bool
    dp_noise_multiplier: float
    dp_clipping_norm: float
    seed: int
    local_epochs: int
    learning_rate: float
    round_timeout: float

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> FederationConfig:
        """Validate every key of a run config (exactly the keys of RULES) and build the config."""
        unknown = sorted(set(run_config) - set(RULES))
        if unknown:
            raise ValueError(f"run config: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(RULES)}")
        values: dict[str, Any] = {}
        for key, (name, rule) in RULES.items():
            if key not in run_config:
                raise ValueError(f"run config: key '{key}' is missing")
            values[name] = _checked(key, rule, run_config[key])
        config = cls(**values)
        config._check_relations()
        return config

    def _check_relations(self) -> None:
        """Rules between keys: a round can never wait for more nodes than must be available."""
        if self.min_fit_clients > self.min_available_clients:
            raise ValueError(f"run config: 'min-fit-clients' must be <= 'min-available-clients', got "
                             f"{self.min_fit_clients} > {self.min_available_clients}")
        if self.min_evaluate_clients > self.min_available_clients:
            raise ValueError(f"run config: 'min-evaluate-clients' must be <= 'min-available-clients', got "
                             f"{self.min_evaluate_clients} > {self.min_available_clients}")

    def strategy_sampling(self) -> dict[str, Any]:
        """Keyword arguments of every Flower Message-API strategy that govern sampling.

        The one place where the platform's names meet Flower's (the upstream swapped two of them)."""
        return {
            "fraction_train": self.fraction_fit,
            "fraction_evaluate": self.fraction_evaluate,
            "min_train_nodes": self.min_fit_clients,
            "min_evaluate_nodes": self.min_evaluate_clients,
            "min_available_nodes": self.min_available_clients,
        }

    def to_run_config(self) -> dict[str, Any]:
        """The run config this object was built from (the keys as the platform names them)."""
        by_name = {name: key for key, (name, _) in RULES.items()}
        return {by_name[f.name]: getattr(self, f.name) for f in fields(self)}


def _checked(key: str, rule: Rule, value: Any) -> Any:
    """The value, typed, or a ValueError naming the key, the rule and the value."""
    if rule.kind is bool:
        ok = isinstance(value, bool)
    elif rule.kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif rule.kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, rule.kind)
    if not ok:
        raise ValueError(f"run config: '{key}' must be of type {rule.kind.__name__}, got "
                         f"{type(value).__name__} {value!r}")
    typed = float(value) if rule.kind is float else value
    if rule.kind is float and not math.isfinite(typed):  # TOML has nan and inf literals
        raise ValueError(f"run config: '{key}' must be a finite number, got {value!r}")
    if not rule.holds(typed):
        raise ValueError(f"run config: '{key}' {rule.says}, got {value!r}")
    return typed
