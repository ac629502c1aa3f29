"""IRIs that the code needs by name; everything else is in the Turtle and SPARQL files."""

AI4KG = "https://w3id.org/ai4kg/ns#"
VOCAB = "https://w3id.org/ai4kg/vocab/"
ONTOLOGY_GRAPH = "https://w3id.org/ai4kg/ns"
VOCABULARY_GRAPH = "https://w3id.org/ai4kg/vocab/"
PLATFORM_GRAPH = "urn:ai4kg:platform"
"""The platform's description of itself (its catalogue: title, publisher, homepage)."""
PLATFORM_AGENTS_GRAPH = "urn:ai4kg:platform-agents"
"""The platform and the software agents acting for it (mappings/platform-agents.ttl): described
here once, named by the activities' graphs."""
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
SKOS = "http://www.w3.org/2004/02/skos/core#"
PROV = "http://www.w3.org/ns/prov#"
MLS = "http://www.w3.org/ns/mls#"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"


def asset_iri(base_url: str, kind: str, identifier: str) -> str:
    """The stable IRI of an asset: base URL, kind in lower case, identifier (e.g. .../module/yolo)."""
    return f"{base_url}{kind.lower()}/{identifier}"
