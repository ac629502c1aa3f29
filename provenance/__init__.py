"""Provenance: fragments that platform components already expose (CI builds, MLflow runs,
workload-manager jobs), kept verbatim, mapped by RML (mappings/provenance/) into W3C PROV-O
graphs, and lineage queries over them. See docs/architecture.md, "Provenance"."""
