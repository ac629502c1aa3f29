"""Synthetic, valid ai4-metadata 2.3.0 modules for benchmarks (deterministic for a given seed).

Sizes follow real modules: a title of about 5 words, a summary of about 20, a description of
100-400 words drawn from a Zipf-like vocabulary of invented words (so common words hit many
modules and rare ones a few), 3-6 tags, and vocabulary fields drawn from the ai4-metadata 2.3.0
enumerations (copied below; the benchmark reads nothing outside the repository).

    python bench/generate.py N OUTDIR [--seed S]
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import random
from functools import cache
from pathlib import Path
from typing import Any

import yaml

# The enumerations of ai4-metadata 2.3.0 (ai4-apps-v2.3.0.json), in schema order.
LIBRARIES = ["TensorFlow", "PyTorch", "Keras", "Scikit-learn", "XGBoost", "LightGBM", "CatBoost", "Other"]
TASKS = ["Computer Vision", "Natural Language Processing", "Time Series", "Recommender Systems",
         "Anomaly Detection", "Regression", "Classification", "Clustering", "Dimensionality Reduction",
         "Generative Models", "Graph Neural Networks", "Optimization", "Reinforcement Learning",
         "Transfer Learning", "Uncertainty Estimation", "Other"]
CATEGORIES = ["AI4 pre trained", "AI4 trainable", "AI4 inference", "AI4 tools"]
DATA_TYPES = ["Image", "Text", "Time Series", "Tabular", "Graph", "Audio", "Video", "Other"]

VOCABULARY_SIZE = 4000
ZIPF_EXPONENT = 1.0
_SYLLABLES = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "xe", "zo", "ba", "de", "fi", "go", "hu",
              "ja", "ke", "li", "mo", "ne", "po", "qu", "ri", "su", "ta", "ve", "wi", "yo", "za", "an", "el",
              "in", "or", "us", "ex", "am", "ol", "ir", "ut"]
_START = dt.date(2019, 1, 1)


@cache
def vocabulary(size: int = VOCABULARY_SIZE) -> tuple[str, ...]:
    """`size` distinct invented words of 2-4 syllables; the same list every time (rank 0 is the most common)."""
    rng = random.Random(20240801)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return tuple(words)


@cache
def _cumulative(size: int = VOCABULARY_SIZE, exponent: float = ZIPF_EXPONENT) -> tuple[float, ...]:
    return tuple(itertools.accumulate(1.0 / (rank + 1) ** exponent for rank in range(size)))


def _words(rng: random.Random, count: int) -> list[str]:
    words, cumulative = vocabulary(), _cumulative()
    total = cumulative[-1]
    return [words[min(bisect.bisect_left(cumulative, rng.random() * total), len(words) - 1)] for _ in range(count)]


def _sentence_text(rng: random.Random, count: int) -> str:
    """`count` words cut into sentences of 8-20 words, capitalised and full-stopped."""
    words = _words(rng, count)
    sentences, start = [], 0
    while start < len(words):
        end = min(len(words), start + rng.randint(8, 20))
        sentence = " ".join(words[start:end])
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        start = end
    return " ".join(sentences)


def _description(rng: random.Random) -> str:
    """100-400 words in paragraphs of 40-120 words."""
    remaining, paragraphs = rng.randint(100, 400), []
    while remaining > 0:
        size = min(remaining, rng.randint(40, 120))
        paragraphs.append(_sentence_text(rng, size))
        remaining -= size
    return "\n\n".join(paragraphs)


def module_id(index: int, seed: int) -> str:
    return f"bench-{seed}-{index:06d}"


def generate_one(index: int, seed: int) -> dict[str, Any]:
    """Module number `index` of the set made with `seed` (independent of how many are generated)."""
    rng = random.Random(seed * 1_000_003 + index)
    identifier = module_id(index, seed)
    title = " ".join(w.capitalize() for w in _words(rng, rng.randint(3, 7)))
    created = _START + dt.timedelta(days=rng.randint(0, 1500))
    updated = created + dt.timedelta(days=rng.randint(0, 600))
    tags: list[str] = []
    wanted_tags = rng.randint(3, 6)
    while len(tags) < wanted_tags:
        tag = " ".join(_words(rng, rng.choice((1, 1, 2))))
        if tag not in tags:
            tags.append(tag)
    document: dict[str, Any] = {
        "metadata_version": "2.3.0",
        "title": title,
        "summary": _sentence_text(rng, rng.randint(14, 26)),
        "description": _description(rng),
        "dates": {"created": created.isoformat(), "updated": updated.isoformat()},
        "links": {
            "ai4_template": "ai4-template/2.1.0",
            "source_code": f"https://github.com/bench/{identifier}",
            "docker_image": f"bench/{identifier}",
        },
        "tags": tags,
        "tasks": rng.sample(TASKS, rng.randint(1, 3)),
        "categories": rng.sample(CATEGORIES, rng.randint(1, 2)),
        "libraries": rng.sample(LIBRARIES, rng.randint(1, 2)),
        "data-type": rng.sample(DATA_TYPES, rng.randint(1, 2)),
    }
    if rng.random() < 0.4:
        document["doi"] = f"10.5281/zenodo.{rng.randint(1_000_000, 9_999_999)}"
    if rng.random() < 0.5:
        document["links"]["documentation"] = f"https://bench.example.org/{identifier}/docs"
    if rng.random() < 0.3:
        document["links"]["dataset"] = f"https://zenodo.org/records/{rng.randint(1_000_000, 9_999_999)}"
    if rng.random() < 0.7:
        document["resources"] = {
            "inference": {"cpu": rng.choice((1, 2, 4)), "gpu": rng.choice((0, 0, 1)),
                          "memory_MB": rng.choice((2000, 4000, 8000))},
        }
        if rng.random() < 0.5:
            document["resources"]["training"] = {"cpu": rng.choice((4, 8)), "gpu": 1,
                                                 "memory_MB": rng.choice((16000, 32000)),
                                                 "storage_MB": rng.choice((20000, 100000))}
    order = ["metadata_version", "title", "summary", "description", "doi", "dates", "links", "tags", "tasks",
             "categories", "libraries", "data-type", "resources"]
    return {key: document[key] for key in order if key in document}


def generate(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` valid ai4-metadata 2.3.0 documents, the same ones for the same seed."""
    return [generate_one(index, seed) for index in range(n)]


class _Dumper(yaml.SafeDumper):
    """Quotes every string that YAML could read as something else (dates stay '2024-01-02')."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def to_yaml(document: dict[str, Any]) -> str:
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    # SafeDumper already quotes date-like strings ('2024-01-02'); make sure of it.
    for key in ("created", "updated"):
        value = document["dates"][key]
        assert f"{key}: '{value}'" in text, (key, value)
    return text


def write(folder: str | Path, n: int, seed: int = 0) -> list[Path]:
    """Write `n` modules as FOLDER/<id>.yml; returns the paths in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n):
        document = generate_one(index, seed)
        path = folder / f"{module_id(index, seed)}.yml"
        path.write_text(to_yaml(document), "utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = write(args.outdir, args.n, args.seed)
    print(f"wrote {len(paths)} modules to {args.outdir}")


if __name__ == "__main__":
    main()
