"""IRIs that the code needs by name; everything else is in the Turtle and SPARQL files."""

AI4KG = "https://w3id.org/ai4kg/ns#"
VOCAB = "https://w3id.org/ai4kg/vocab/"
ONTOLOGY_GRAPH = "https://w3id.org/ai4kg/ns"
VOCABULARY_GRAPH = "https://w3id.org/ai4kg/vocab/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
SKOS = "http://www.w3.org/2004/02/skos/core#"
