"""Federated learning on Flower: federations, client credentials, rounds as provenance."""
