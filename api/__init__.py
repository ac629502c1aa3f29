"""HTTP interfaces over the knowledge graph."""
