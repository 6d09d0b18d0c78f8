"""Writes a copy of Tyk's swagger.yml with the conformance run's named errata applied.

Usage: python3 swagger_errata.py <swagger.yml> <out.json>

Run by tests/conformance/schemathesis.rs with the schemathesis venv's Python (PyYAML is a
schemathesis dependency). The copy goes to a temporary folder, never into the repository.
Each erratum names why the swagger is wrong for certgate: either the swagger disagrees with
Tyk's own behaviour (certgate follows Tyk, per ../shared/spec/tyk-certificate-auth.md), or
certgate deliberately differs (the docs/compatibility.md row is named), or the run cannot
reach the network.
"""

import json
import sys

import yaml

EXTERNAL = "https://raw.githubusercontent.com/TykTechnologies/tyk/refs/heads/master/apidef/oas/schema/3.0.json"


def op(doc, path, method):
    return doc["paths"][path][method]


def json_schema(doc, path, method, status):
    return op(doc, path, method)["responses"][status]["content"]["application/json"]["schema"]


def status_message(description):
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiStatusMessage"}}},
    }


def offline_refs(node):
    """(network) The OAS document schema is referenced by URL; the run has no network.
    Replaced by `type: object` (OAS bodies are then generated as arbitrary objects)."""
    if isinstance(node, dict):
        if node.get("$ref") == EXTERNAL:
            node.clear()
            node["type"] = "object"
        for v in node.values():
            offline_refs(v)
    elif isinstance(node, list):
        for v in node:
            offline_refs(v)


def certs_list_one_of(doc):
    """(swagger vs Tyk) GET /tyk/certs: `oneOf` of two shapes that both match an empty list,
    which Tyk answers (`{"certs":[]}` with mode=detailed, spec §3.3): `anyOf`."""
    s = json_schema(doc, "/tyk/certs", "get", "200")
    s["anyOf"] = s.pop("oneOf")


def certs_by_ids_null_entries(doc):
    """(swagger vs Tyk) GET /tyk/certs/{a},{b}: Tyk answers `null` for each unknown ID
    (spec §3.4); the swagger's array items do not allow null."""
    s = json_schema(doc, "/tyk/certs/{certID}", "get", "200")
    for alt in s["oneOf"]:
        if alt.get("type") == "array":
            alt["items"] = {"allOf": [alt["items"]], "nullable": True}


def policy_delete_404(doc):
    """(proposed compatibility row) DELETE /tyk/policies/{polID} of a missing policy: Tyk 500
    `Delete failed`; certgate 404 `Policy not found` (a missing object is not a server error)."""
    op(doc, "/tyk/policies/{polID}", "delete")["responses"]["404"] = status_message("Not Found")


def malformed_path_400(doc):
    """(row 29) Every operation with a path parameter: a path that is not canonical (an
    encoded `/` or `\\`, a dot segment, a bad escape) answers 400 `Malformed request path`."""
    for item in doc["paths"].values():
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            params = item.get("parameters", []) + operation.get("parameters", [])
            if any(p.get("in") == "path" for p in params):
                operation["responses"].setdefault(
                    "400",
                    {"description": "Malformed request path",
                     "content": {"application/json": {"schema": {"type": "object"}}}},
                )


ERRATA = [offline_refs, malformed_path_400, certs_list_one_of, certs_by_ids_null_entries, policy_delete_404]


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for fix in ERRATA:
        fix(doc)
        print(f"erratum: {fix.__name__}: {' '.join(fix.__doc__.split())}")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
