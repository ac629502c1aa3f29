"""ai4kg: the knowledge-graph control plane of a federated AI platform for open science."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ai4kg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
