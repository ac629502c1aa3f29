"""How an answer is compared with the gold of ../shared/assistant/questions-dev.yaml (its README's
table), for tests/test_assistant.py and bench/assistant_bench.py."""

from __future__ import annotations

from typing import Any


def _normal(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_normal(v) for v in value)
    return " ".join(value.split()).casefold() if isinstance(value, str) else value


def right(entry: dict[str, Any], answer: Any) -> bool:
    """Whether `answer` (an assistant.Answer) is right for the dev set's `entry`."""
    gold, how = entry["answer"], entry["match"]
    if how == "refuse":
        return answer.status == "refused" and not answer.values
    if answer.status != "answered":
        return False
    if how in ("number", "boolean"):
        return answer.values == gold or answer.values == [gold]
    if not isinstance(answer.values, list):
        return False
    got = {_normal(v) for v in answer.values}
    wanted = {_normal(v) for v in gold}
    return got == wanted if how == "set" else wanted <= got
