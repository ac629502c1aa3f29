"""Thin adapters between the graph and the components the platform drives or reads (MLflow today)."""
