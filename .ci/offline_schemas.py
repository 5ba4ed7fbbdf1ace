"""Derive kubeconform's offline schemas from the kubernetes-validate wheel.

kubernetes-validate ships one JSON schema per kind whose $refs point at
"/api/_definitions.json"; kubeconform resolves a $ref relative to the schema's
own file, so the refs are rewritten to the sibling "_definitions.json".
Usage: offline_schemas.py KUBERNETES_VERSION DEST_DIR
"""

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
        text = schema.read_text().replace(ABSOLUTE_REF, RELATIVE_REF)
        (staging / schema.name).write_text(text)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    print(f"offline_schemas: {len(list(target.glob('*.json')))} schemas in {target}")


if __name__ == "__main__":
    main(sys.argv[1], pathlib.Path(sys.argv[2]))
