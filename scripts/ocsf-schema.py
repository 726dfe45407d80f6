#!/usr/bin/env python3
"""Writes the JSON Schema of OCSF's Detection Finding class (2004) with the cloud profile, and of
every object it refers to, as one file for the tests (tests/schemas/ocsf-1.1.0-detection_finding.json).

The schema comes from the `ocsf-json-schema` package (PyPI), which carries the OCSF schema
releases as published by the OCSF project and turns them into JSON Schema:

    pip download ocsf-json-schema==1.2.0 --no-deps -d /tmp/ocsf && cd /tmp/ocsf && unzip -q *.whl
    PYTHONPATH=/tmp/ocsf python3 scripts/ocsf-schema.py 1.1.0 > tests/schemas/ocsf-1.1.0-detection_finding.json
"""
import importlib.resources
import json
import sys

from ocsf_json_schema.schema import OcsfJsonSchema

version = sys.argv[1] if len(sys.argv) > 1 else "1.1.0"
data = json.loads(
    importlib.resources.files("ocsf_json_schema").joinpath(f"ocsf/{version}.json").read_text()
)
schema = OcsfJsonSchema(data)
root = schema.get_class_schema("detection_finding", ["cloud"])
prefix = f"https://schema.ocsf.io/schema/{version}/"

objects = {}
todo = [root]


def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(prefix):
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


while todo:
    for ref in refs(todo.pop()):
        if ref not in objects:
            objects[ref] = schema.get_schema_from_uri(ref)
            todo.append(objects[ref])

json.dump(
    {
        "source": f"ocsf-json-schema 1.2.0 (PyPI), OCSF {version}, detection_finding with the cloud profile; scripts/ocsf-schema.py",
        "class": root,
        "objects": dict(sorted(objects.items())),
    },
    sys.stdout,
    indent=1,
    sort_keys=True,
)
print()
