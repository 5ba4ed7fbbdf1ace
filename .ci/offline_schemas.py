"""Derive kubeconform's offline schemas from the kubernetes-validate wheel.

kubernetes-validate ships one JSON schema per kind whose $refs point at
"/api/_definitions.json" and whose "$id" is a kubernetes.io URL; kubeconform
resolves a $ref against the $id (or, without one, the file itself), so the
$id goes and the refs are rewritten to the sibling "_definitions.json".
Usage: offline_schemas.py KUBERNETES_VERSION DEST_DIR
"""

import json
import pathlib
import shutil
import sys

import kubernetes_validate

ABSOLUTE_REF = '"/api/_definitions.json#'
RELATIVE_REF = '"_definitions.json#'


def main(version: str, dest: pathlib.Path) -> None:
    package = pathlib.Path(kubernetes_validate.__file__).parent
    source = package / "kubernetes-json-schema" / f"v{version}-local-strict"
    if not source.is_dir():
        sys.exit(f"offline_schemas: kubernetes-validate has no schemas for v{version} ({source})")
    target = dest / f"v{version}-standalone-strict"
    staging = dest / f".v{version}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for schema in source.glob("*.json"):
        document = json.loads(schema.read_text().replace(ABSOLUTE_REF, RELATIVE_REF))
        document.pop("$id", None)
        (staging / schema.name).write_text(json.dumps(document))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    print(f"offline_schemas: {len(list(target.glob('*.json')))} schemas in {target}")


if __name__ == "__main__":
    main(sys.argv[1], pathlib.Path(sys.argv[2]))
