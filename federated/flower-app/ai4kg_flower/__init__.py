"""ai4kg's Flower App: ServerApp and ClientApp run by Flower 1.42 (never imported by the platform)."""
