"""Turn an ai4-metadata document into the flat records the RML mappings read, and back.

A record is a flat dict whose keys are the document's field paths ("links.source_code",
"resources.inference.cpu"), plus node IRIs the mapping cannot mint itself (keys ending in
"@iri"). Array fields become one record per value in a source of their own. `to_records` and
`from_records` are inverses, up to the normalisation documented in mappings/README.md:
- surrounding white space is trimmed from single-line fields (URLs, identifiers, labels);
- vocabulary values are written as their preferred label; any label of the concept is accepted
  on the way in, in any case or punctuation ('computer vision', 'Computer_Vision', 'NLP');
- list order of tags/tasks/categories/libraries/data-type is not kept (they are sets);
- a V1 description list becomes one text, its lines joined with no separator;
- a link outside the schema left empty (null) is the same as one left out, and so is an empty
  data-type list.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from .schema import Generation, load_schema
from .vocabulary import concept_slug, slug

Records = dict[str, list[dict[str, Any]]]

VOCABULARY_FIELDS: dict[str, str] = {"tasks": "task", "categories": "category", "libraries": "library", "data-type": "data-type"}
"""Document field -> concept scheme name under https://w3id.org/ai4kg/vocab/."""

_MULTILINE = {"description", "summary"}
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_valid_identifier(identifier: str) -> bool:
    return bool(_IDENTIFIER.match(identifier))


def derive_identifier(document: dict[str, Any], generation: Generation, fallback: str) -> str:
    """The module identifier when none is given: the source repository's name, else the file's.

    V2 documents name their code repository in links.source_code; V1 files name the repository
    that builds the module's image in sources.dockerfile_repo.
    """
    if generation == "v2":
        url = (document.get("links") or {}).get("source_code") if isinstance(document.get("links"), dict) else None
    else:
        url = (document.get("sources") or {}).get("dockerfile_repo") if isinstance(document.get("sources"), dict) else None
    if isinstance(url, str):
        name = PurePosixPath(urlsplit(url.strip()).path.rstrip("/")).name.removesuffix(".git")
        if is_valid_identifier(name):
            return name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", fallback).strip("-.") or "module"
    return cleaned[:128]


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _clean(key: str, value: Any) -> Any:
    if isinstance(value, str) and key.rsplit(".", 1)[-1] not in _MULTILINE:
        return value.strip()
    if isinstance(value, float) and value.is_integer() and not key.endswith("gpu_compute_capability"):
        return int(value)
    return value


def to_records(document: dict[str, Any], generation: Generation, asset_iri: str, identifier: str,
               license: str | None = None, vo_iri: str | None = None, visibility: str | None = None) -> Records:
    """Mapping records of one schema-valid document (see metadata.schema.check_document).

    `license`, `vo_iri` (the owning VO) and `visibility` (a concept slug) come from the import,
    not from the document."""
    records: Records = defaultdict(list)
    module: dict[str, Any] = {}
    # Only the schema's own fields reach the records: an unknown key (a warning) must not be able
    # to set a record key such as asset_iri and so write into another asset's graph.
    fields = _schema_fields(generation)
    if generation == "v2":
        scalars = {k: v for k, v in document.items()
                   if k in fields and k not in ("tags", "links", *VOCABULARY_FIELDS)}
        links = dict(document.get("links") or {})
        known_links = _known_link_keys()
        extra = {k: links.pop(k) for k in list(links) if k not in known_links}
        _flatten(scalars, "", module)
        _flatten({"links": links}, "", module)
        for kind in ("inference", "training"):
            if any(key.startswith(f"resources.{kind}.") for key in module):
                module[f"resources.{kind}@iri"] = f"{asset_iri}#resources-{kind}"
        nodes: set[str] = set()
        for key, target in extra.items():
            if target is None:  # an empty YAML value: the same as leaving the key out
                continue
            node = f"{asset_iri}#link-{slug(str(key)) or 'key'}"
            while node in nodes:  # 'training_data' and 'training-data' share a slug
                node += "-"
            nodes.add(node)
            records["links"].append({"asset_iri": asset_iri, "links@iri": node,
                                     "key": str(key), "target": _clean("links", target)})
        for value in document.get("tags") or []:
            records["tags"].append({"asset_iri": asset_iri, "tags": _clean("tags", value)})
        for field in VOCABULARY_FIELDS:
            for value in document.get(field) or []:
                records[field].append({"asset_iri": asset_iri, field: concept_slug(VOCABULARY_FIELDS[field], value)})
        if license:
            module["license"] = license
    else:
        scalars = {k: v for k, v in document.items() if k in fields and k not in ("keywords", "tosca", "description")}
        _flatten(scalars, "", module)
        module["metadata_version"] = "1.0.0"
        description = document.get("description")
        if description:
            module["description"] = "".join(description) if isinstance(description, list) else description
        if license:
            module["license"] = license
        for value in document.get("keywords") or []:
            records["keywords"].append({"asset_iri": asset_iri, "keywords": _clean("keywords", value)})
        for position, template in enumerate(document.get("tosca") or []):
            node = f"{asset_iri}#tosca-{position}"
            records["tosca"].append({"asset_iri": asset_iri, "tosca@iri": node, "position": position,
                                     "tosca.title": _clean("title", template.get("title")),
                                     "tosca.url": _clean("url", template.get("url"))})
            for name in template.get("inputs") or []:
                records["tosca_inputs"].append({"tosca@iri": node, "tosca.inputs": name})
    module.update({"asset_iri": asset_iri, "identifier": identifier, "vo@iri": vo_iri, "visibility": visibility})
    records["modules"].append({k: _clean(k, v) for k, v in module.items() if v is not None})
    return dict(records)


def _known_link_keys() -> set[str]:
    return set(load_schema("v2")["properties"]["links"]["properties"])


def _schema_fields(generation: Generation) -> set[str]:
    return set(load_schema(generation)["properties"])


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _merged(rows: list[dict[str, Any]], node_key: str) -> list[dict[str, Any]]:
    """Records of one node, made by several triples maps, joined into one record per node."""
    nodes: dict[str, dict[str, Any]] = {}
    for row in rows:
        nodes.setdefault(row[node_key], {}).update(row)
    return list(nodes.values())


def from_records(records: Records, generation: Generation, labels: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The document written from mapping records; `labels` maps scheme -> slug -> canonical label.

    Keys the import adds (asset_iri, identifier, node IRIs, the VO, visibility, and in 2.x the
    license) are left out: they are not part of the document.
    """
    module: dict[str, Any] = {}
    for record in records.get("modules", []):
        module.update(record)
    added = ("asset_iri", "identifier", "visibility") + (("license",) if generation == "v2" else ())
    for key in [k for k in module if k.endswith("@iri") or k in added]:
        del module[key]
    if generation == "v1":
        module.pop("metadata_version", None)
    document = _unflatten(module)
    if generation == "v2":
        extra_links = {r["key"]: r["target"] for r in _merged(records.get("links", []), "links@iri")}
        if extra_links:
            document.setdefault("links", {}).update(extra_links)
        # tags, tasks, categories and libraries are required lists (possibly empty); data-type is optional
        document["tags"] = [r["tags"] for r in records.get("tags", [])]
        for field, scheme in VOCABULARY_FIELDS.items():
            if records.get(field) or field != "data-type":
                document[field] = [labels[scheme].get(r[field], r[field]) for r in records.get(field, [])]
    else:
        if "description" in document:
            document["description"] = [document["description"]]
        if records.get("keywords"):
            document["keywords"] = [r["keywords"] for r in records["keywords"]]
        inputs: dict[str, list[str]] = defaultdict(list)
        for record in records.get("tosca_inputs", []):
            inputs[record["tosca@iri"]].append(record["tosca.inputs"])
        templates = sorted(_merged(records.get("tosca", []), "tosca@iri"), key=lambda r: int(r["position"]))
        if templates:
            document["tosca"] = [{"title": t["tosca.title"], "url": t["tosca.url"], "inputs": inputs.get(t["tosca@iri"], [])}
                                 for t in templates]
    return document
