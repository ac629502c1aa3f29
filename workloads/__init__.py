"""Deployments and workloads: the records, the ledger and outbox, the control loop (service.py)."""
