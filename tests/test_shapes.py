"""A conforming and a failing example for every SHACL node shape in shapes/."""

from __future__ import annotations

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.namespace import RDF, SH

from ai4kg.graph.validation import shapes_graph, validate

PREFIXES = """@prefix ai4kg: <https://w3id.org/ai4kg/ns#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix prov: <http://www.w3.org/ns/prov#> . @prefix mls: <http://www.w3.org/ns/mls#> .
@prefix v: <https://w3id.org/ai4kg/vocab/> . @prefix : <https://w3id.org/ai4kg/id/x/> .
"""
MODULE = """:m a ai4kg:Module ; ai4kg:identifier "m" ; ai4kg:title "T" ; ai4kg:summary "S" ; ai4kg:description "D" ;
  ai4kg:belongsToVO :vo ; ai4kg:visibility <https://w3id.org/ai4kg/vocab/visibility/public> ;
  ai4kg:sourceCode <https://example.org/code> ; ai4kg:created "2024-01-01"^^xsd:date ; ai4kg:updated "2024-02-01"^^xsd:date ;
  ai4kg:task <https://w3id.org/ai4kg/vocab/task/classification> ;
  ai4kg:category <https://w3id.org/ai4kg/vocab/category/ai4-trainable> ;
  ai4kg:library <https://w3id.org/ai4kg/vocab/library/pytorch> ;
  ai4kg:dataType <https://w3id.org/ai4kg/vocab/data-type/image> ."""
SESSION = """:s a ai4kg:FederatedSession ; ai4kg:identifier "s" ; ai4kg:strategy "FedAvg" ;
  ai4kg:minFitClients 2 ; ai4kg:minAvailableClients 3 ."""
VO = ':vo a ai4kg:VirtualOrganisation ; ai4kg:identifier "vo.example.eu" ; ai4kg:name "Example VO" .'

# shape -> (conforming data, failing data)
EXAMPLES: dict[str, tuple[str, str]] = {
    "ModuleShape": (MODULE, MODULE.replace('ai4kg:title "T" ;', "")),
    "WebLinkShape": (MODULE, MODULE.replace("<https://example.org/code>", "<ftp://example.org/code>")),
    "TaskValueShape": (MODULE, MODULE.replace("task/classification", "task/telepathy")),
    "CategoryValueShape": (MODULE, MODULE.replace("category/ai4-trainable", "category/unknown")),
    "LibraryValueShape": (MODULE, MODULE.replace("library/pytorch", "library/fortran")),
    "DataTypeValueShape": (MODULE, MODULE.replace("data-type/image", "data-type/smell")),
    "VisibilityValueShape": (MODULE, MODULE.replace("visibility/public", "visibility/secret")),
    "ResourceRequirementsShape": (':r a ai4kg:ResourceRequirements ; ai4kg:cpu 2 .',
                                  ':r a ai4kg:ResourceRequirements ; ai4kg:cpu -1 .'),
    "LinkShape": (':l a ai4kg:Link ; ai4kg:linkKey "k" ; ai4kg:linkTarget "t" .', ':l a ai4kg:Link ; ai4kg:linkKey "k" .'),
    "ToscaTemplateShape": (':t a ai4kg:ToscaTemplate ; ai4kg:position 0 ; ai4kg:toscaTitle "x" ; ai4kg:toscaUrl <https://e.org/t> .',
                           ':t a ai4kg:ToscaTemplate ; ai4kg:position 0 ; ai4kg:toscaTitle "x" ; ai4kg:toscaUrl <https://e.org/t> ; ai4kg:toscaInput "rm -rf" .'),
    "ManagedResourceShape": (VO, ':vo a ai4kg:VirtualOrganisation ; ai4kg:identifier "bad id with spaces" ; ai4kg:name "Example VO" .'),
    "ToolShape": (':t a ai4kg:Tool ; ai4kg:identifier "t" ; ai4kg:title "Tool" .', ':t a ai4kg:Tool ; ai4kg:identifier "t" .'),
    "ActivityShape": (':b a ai4kg:Build ; ai4kg:identifier "b" ; ai4kg:builtFrom :m ; ai4kg:startedAt "2024-01-01T10:00:00"^^xsd:dateTime ; ai4kg:endedAt "2024-01-01T11:00:00"^^xsd:dateTime .',
                      ':b a ai4kg:Build ; ai4kg:identifier "b" ; ai4kg:builtFrom :m ; ai4kg:startedAt "2024-01-01T12:00:00"^^xsd:dateTime ; ai4kg:endedAt "2024-01-01T11:00:00"^^xsd:dateTime .'),
    "DeploymentShape": (':d a ai4kg:ModuleDeployment ; ai4kg:identifier "d" ; ai4kg:deploys :m .',
                        ':d a ai4kg:ModuleDeployment ; ai4kg:identifier "d" .'),
    "TrainingRunShape": (MODULE + ' :r a ai4kg:TrainingRun ; ai4kg:identifier "r" ; ai4kg:trainedModule :m .',
                         ':r a ai4kg:TrainingRun ; ai4kg:identifier "r" .'),
    "DatasetShape": (':d a ai4kg:Dataset ; ai4kg:identifier "d" ; ai4kg:title "D" ; ai4kg:doi "10.5281/zenodo.1" .',
                     ':d a ai4kg:Dataset ; ai4kg:identifier "d" ; ai4kg:title "D" ; ai4kg:doi "not-a-doi" .'),
    "FederatedSessionShape": (SESSION, SESSION.replace('"FedAvg"', '"FedMagic"')),
    "FederatedRoundShape": (SESSION + ' :r a ai4kg:FederatedRound ; ai4kg:identifier "r1" ; ai4kg:session :s ; ai4kg:roundNumber 1 .',
                            SESSION + ' :r a ai4kg:FederatedRound ; ai4kg:identifier "r1" ; ai4kg:session :s ; ai4kg:roundNumber 0 .'),
    "DatacenterShape": (':p a ai4kg:Provider ; ai4kg:identifier "p" ; ai4kg:name "P" . :dc a ai4kg:Datacenter ; ai4kg:identifier "dc" ; ai4kg:operatedBy :p .',
                        ':dc a ai4kg:Datacenter ; ai4kg:identifier "dc" .'),
    "BuildShape": (':b a ai4kg:Build ; ai4kg:identifier "b" ; ai4kg:builtFrom :m .', ':b a ai4kg:Build ; ai4kg:identifier "b" .'),
    "DriftReportShape": (MODULE + ' :d a ai4kg:DriftReport ; ai4kg:identifier "d" ; ai4kg:monitoredModule :m ; ai4kg:driftDetected true .',
                         MODULE + ' :d a ai4kg:DriftReport ; ai4kg:identifier "d" ; ai4kg:monitoredModule :m ; ai4kg:driftDetected "yes" .'),
    "AgentShape": (':a a ai4kg:Person ; ai4kg:identifier "a" ; ai4kg:name "Ada" .', ':a a ai4kg:Person ; ai4kg:identifier "a" .'),
    "SecretReferenceShape": (':k a ai4kg:SecretReference ; ai4kg:identifier "k" ; ai4kg:secretPath "vo/deployments/token" .',
                             ':k a ai4kg:SecretReference ; ai4kg:identifier "k" ; ai4kg:secretPath "s3cr3t value!" .'),
    "ProvActivityShape": (':a a prov:Activity ; prov:startedAtTime "2024-01-01T10:00:00Z"^^xsd:dateTime ; prov:endedAtTime "2024-01-01T11:00:00Z"^^xsd:dateTime .',
                          ':a a prov:Activity ; prov:startedAtTime "2024-01-01T12:00:00Z"^^xsd:dateTime ; prov:endedAtTime "2024-01-01T11:00:00Z"^^xsd:dateTime .'),
    "ProvEntityShape": (':e a prov:Entity ; prov:generatedAtTime "2024-01-01T10:00:00Z"^^xsd:dateTime .',
                        ':e a prov:Entity ; prov:generatedAtTime "2024-01-01"^^xsd:date .'),
    "SourceCommitShape": (':c a ai4kg:SourceCommit ; ai4kg:identifier "f2e8b76d90a7" .', ':c a ai4kg:SourceCommit ; ai4kg:identifier "HEAD" .'),
    "ModelWeightsShape": (':w a ai4kg:ModelWeights ; prov:wasGeneratedBy :r .', ':w a ai4kg:ModelWeights .'),
    "ManagedDeploymentShape": (
        ':d a ai4kg:BatchTrainingDeployment ; ai4kg:identifier "d" ; ai4kg:deploys :m ; ai4kg:status "queued" ; '
        'ai4kg:requestedResources :r ; ai4kg:launchedBy :p ; ai4kg:belongsToVO :vo ; ai4kg:dockerImage "x/y:latest" ; '
        'ai4kg:statusChange :c . :r a ai4kg:ResourceRequirements . :vo a ai4kg:VirtualOrganisation ; ai4kg:identifier "vo" ; ai4kg:name "A VO" . '
        ':c a ai4kg:StatusChange ; ai4kg:sequence 0 ; ai4kg:status "queued" ; prov:atTime "2024-01-01T10:00:00Z"^^xsd:dateTime .',
        ':d a ai4kg:BatchTrainingDeployment ; ai4kg:identifier "d" ; ai4kg:deploys :m ; ai4kg:status "sleeping" ; '
        'ai4kg:launchedBy :p ; ai4kg:belongsToVO :vo ; ai4kg:dockerImage "x/y:latest" ; '
        'ai4kg:statusChange :c . :vo a ai4kg:VirtualOrganisation ; ai4kg:identifier "vo" ; ai4kg:name "A VO" . '
        ':c a ai4kg:StatusChange ; ai4kg:sequence 0 ; ai4kg:status "queued" ; prov:atTime "2024-01-01T10:00:00Z"^^xsd:dateTime .'),
    "StatusChangeShape": (
        ':c a ai4kg:StatusChange ; ai4kg:sequence 1 ; ai4kg:status "running" ; ai4kg:reason "placed" ; '
        'prov:atTime "2024-01-01T10:00:00Z"^^xsd:dateTime .',
        ':c a ai4kg:StatusChange ; ai4kg:sequence -1 ; ai4kg:status "asleep" .'),
    "FederatedSessionRecordShape": (
        SESSION + ' :s ai4kg:federatedModule :m ; ai4kg:participant :c . ' + MODULE +
        ' :c a ai4kg:FederatedClient ; ai4kg:identifier "s.c" ; ai4kg:name "c" ; ai4kg:status "admitted" ; '
        'ai4kg:keyFingerprint "SHA256:3bpd1/Wa66dVxGjncbxMErCcFsNLSk/z1gjVVr26cRY" .',
        ':s a ai4kg:FederatedSession ; ai4kg:federatedModule :m, :n ; ai4kg:participant :c . :m a ai4kg:Module . '
        ':n a ai4kg:Module .'),
    "FederatedClientShape": (
        ':c a ai4kg:FederatedClient ; ai4kg:keyFingerprint "SHA256:3bpd1/Wa66dVxGjncbxMErCcFsNLSk/z1gjVVr26cRY" ; '
        'ai4kg:status "admitted" ; ai4kg:nodeId "17421653574618038848" ; ai4kg:identifier "f.c" ; ai4kg:name "c" .',
        ':c a ai4kg:FederatedClient ; ai4kg:keyFingerprint "-----BEGIN OPENSSH PRIVATE KEY-----" ; '
        'ai4kg:status "banned" .'),
    "FederatedRoundRecordShape": (
        ':r a ai4kg:FederatedRound ; prov:startedAtTime "2024-01-01T10:00:00Z"^^xsd:dateTime ; '
        'prov:endedAtTime "2024-01-01T10:01:00Z"^^xsd:dateTime ; ai4kg:noiseScale "0.5"^^xsd:double ; '
        'ai4kg:identifier "r1" ; ai4kg:roundNumber 1 ; ai4kg:session :s ; ai4kg:produced :w . '
        ':w a ai4kg:ModelWeights ; prov:wasGeneratedBy :r . ' + SESSION,
        ':r a ai4kg:FederatedRound ; prov:startedAtTime "2024-01-01T10:02:00Z"^^xsd:dateTime ; '
        'prov:endedAtTime "2024-01-01T10:01:00Z"^^xsd:dateTime ; ai4kg:noiseScale "-1"^^xsd:double .'),
    "ClientUpdateShape": (
        ':u a ai4kg:ClientUpdate ; ai4kg:numExamples 100 ; ai4kg:aggregationWeight "0.25"^^xsd:double ; '
        'ai4kg:divergenceScore "1.5"^^xsd:double ; ai4kg:divergent false .',
        ':u a ai4kg:ClientUpdate ; ai4kg:numExamples -1 ; ai4kg:divergent "maybe" .'),
    "RoundEvaluationShape": (
        ':e a mls:ModelEvaluation ; mls:hasValue "0.1"^^xsd:double ; ai4kg:metricScope "server" .',
        ':e a mls:ModelEvaluation ; mls:hasValue "low" ; ai4kg:metricScope "anywhere" .'),
    "GpuModelShape": (':r a ai4kg:ResourceRequirements ; ai4kg:gpuModel "Tesla T4" .',
                      ':r a ai4kg:ResourceRequirements ; ai4kg:gpuModel "" .'),
}


def _quads(turtle: str) -> list[ox.Quad]:
    graph = ox.NamedNode("https://w3id.org/ai4kg/id/x/")
    return [ox.Quad(t.subject, t.predicate, t.object, graph)
            for t in ox.parse(input=(PREFIXES + turtle).encode(), format=ox.RdfFormat.TURTLE)]


@pytest.mark.parametrize("shape", sorted(EXAMPLES))
def test_shape_accepts_good_and_rejects_bad(shape: str) -> None:
    good, bad = EXAMPLES[shape]
    assert validate(_quads(good)) == [], f"{shape}: the conforming example must conform"
    violations = validate(_quads(bad))
    assert violations, f"{shape}: the failing example must fail"
    assert all(v.message for v in violations)


def test_every_node_shape_has_an_example() -> None:
    graph = shapes_graph()
    named = {str(s).rsplit("#", 1)[-1] for s in graph.subjects(RDF.type, SH.NodeShape) if isinstance(s, rdflib.URIRef)}
    assert named == set(EXAMPLES)


def _with_whole_vocabulary(quads: list[ox.Quad]) -> list:
    import pyshacl

    from ai4kg.graph.validation import to_rdflib, violations_of, vocabulary_graph

    data = to_rdflib(quads)
    data += vocabulary_graph()  # as validate() did before: the statements, not the prefixes
    # and pyshacl's own entry point, which builds its shapes afresh, agrees with the shapes kept
    conforms, _, _ = pyshacl.validate(data, shacl_graph=shapes_graph(), allow_warnings=True, inference=None)
    found = violations_of(data)
    assert conforms == (not [v for v in found if v.severity == "violation"])
    return found


def test_the_vocabulary_a_write_is_validated_with_gives_the_whole_vocabularys_results(real) -> None:
    """validate() mixes in only what the shapes read of the vocabularies about the written nodes:
    every example of every shape, and every real module as it is and broken four ways, gets the
    results the whole vocabulary and ontology give."""
    cases = [_quads(text) for pair in EXAMPLES.values() for text in pair]
    task, library = ox.NamedNode(AI4KG + "task"), ox.NamedNode(AI4KG + "library")
    for iri in [i for i in real.index.iris() if "/module/" in i][:12]:
        quads = real.asset_quads(iri)
        cases.append(quads)
        cases.append([q for q in quads if q.predicate.value != AI4KG + "sourceCode"])  # a required field gone
        cases.append([ox.Quad(q.subject, q.predicate, ox.NamedNode(VOCAB + "library/pytorch"), q.graph_name)
                      if q.predicate == task else q for q in quads])  # a concept of another scheme
        cases.append([ox.Quad(q.subject, q.predicate, ox.NamedNode(VOCAB + "library/no-such-library"), q.graph_name)
                      if q.predicate == library else q for q in quads])  # no concept at all
        cases.append([ox.Quad(q.subject, q.predicate, ox.NamedNode(AI4KG + "Link"), q.graph_name)
                      if q.predicate.value == str(RDF.type) and q.object.value == AI4KG + "ResourceRequirements"
                      else q for q in quads])  # a value of the wrong class
    failing = 0
    for quads in cases:
        found = validate(quads)
        assert found == _with_whole_vocabulary(quads)
        failing += bool(found)
    assert failing >= len(EXAMPLES) + 12  # the broken ones fail (so the comparison means something)


AI4KG = "https://w3id.org/ai4kg/ns#"
VOCAB = "https://w3id.org/ai4kg/vocab/"


def test_quads_become_the_rdflib_graph_rdflibs_own_parser_makes(real) -> None:
    """to_rdflib builds terms one by one; the graph is the one N-Triples read by rdflib gives."""
    from rdflib.compare import isomorphic

    from ai4kg.graph.validation import to_rdflib

    extra = _quads(':x ai4kg:title "t"@en , "plain" , "4"^^xsd:integer , "2.5"^^xsd:double , "x"^^xsd:string ; '
                   'ai4kg:created "2024-01-01"^^xsd:date ; ai4kg:divergent true ; ai4kg:link [ ai4kg:linkKey "k" ] .')
    for quads in [extra] + [real.asset_quads(iri) for iri in real.index.iris()[:20]]:
        expected = rdflib.Graph().parse(data=ox.serialize([ox.Triple(q.subject, q.predicate, q.object) for q in quads],
                                                          format=ox.RdfFormat.N_TRIPLES).decode(), format="nt")
        assert isomorphic(to_rdflib(quads), expected)
