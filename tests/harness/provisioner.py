"""A dynamic PersistentVolume provisioner for the one-node cluster (an external provisioner).

Claims of the StorageClass whose provisioner is PROVISIONER get a hostPath volume
in a directory of the run (so a deleted run leaves nothing behind), created with
mode 0777: the kubelet applies no fsGroup to hostPath volumes, and the chart's
pods run as UID 10001. Released volumes of reclaim policy Delete are removed with
their directory. The in-tree hostpath provisioner would do the rest, but it makes
its directories 0750 for root under the host's /tmp.

    python -m tests.harness.provisioner --kubeconfig FILE --root DIR
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import sys
import time
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

PROVISIONER = "bind-ha.local/hostpath"
STORAGE_CLASS = "bind-ha-hostpath"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
POLL = 0.5


class Provisioner:
    def __init__(
        self, core: kubernetes.client.CoreV1Api, storage: kubernetes.client.StorageV1Api, root: pathlib.Path
    ) -> None:
        self.core = core
        self.storage = storage
        self.root = root

    def classes(self) -> dict[str, str]:
        """Our StorageClasses and their reclaim policies."""
        return {
            item.metadata.name: item.reclaim_policy or "Delete"
            for item in self.storage.list_storage_class().items
            if item.provisioner == PROVISIONER
        }

    def round(self) -> None:
        classes = self.classes()
        volumes = {pv.metadata.name: pv for pv in self.core.list_persistent_volume().items}
        for claim in self.core.list_persistent_volume_claim_for_all_namespaces().items:
            name = f"pvc-{claim.metadata.uid}"
            wanted = claim.status.phase == "Pending" and claim.spec.storage_class_name in classes
            if wanted and name not in volumes:
                self.provision(claim, name, classes[claim.spec.storage_class_name])
        for volume in volumes.values():
            ours = (volume.metadata.annotations or {}).get(PROVISIONED_BY) == PROVISIONER
            released = volume.status.phase == "Released"
            if ours and released and volume.spec.persistent_volume_reclaim_policy == "Delete":
                self.delete(volume)

    def provision(self, claim: Any, name: str, reclaim: str) -> None:
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o777)  # any pod UID may write: no fsGroup on hostPath
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
            "spec": {
                "capacity": {"storage": claim.spec.resources.requests["storage"]},
                "accessModes": claim.spec.access_modes,
                "persistentVolumeReclaimPolicy": reclaim,
                "storageClassName": claim.spec.storage_class_name,
                "volumeMode": claim.spec.volume_mode or "Filesystem",
                "hostPath": {"path": str(directory), "type": "Directory"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": claim.metadata.namespace,
                    "name": claim.metadata.name,
                    "uid": claim.metadata.uid,
                },
            },
        }
        try:
            self.core.create_persistent_volume(body)
        except ApiException as error:
            if error.status != 409:
                raise
        print(f"provisioned {name} for {claim.metadata.namespace}/{claim.metadata.name}", flush=True)

    def delete(self, volume: Any) -> None:
        path = pathlib.Path(volume.spec.host_path.path)
        if path.parent == self.root:  # never remove anything outside our own directory
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(ApiException):
            self.core.delete_persistent_volume(volume.metadata.name)
        print(f"deleted {volume.metadata.name}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="provisioner", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True, type=pathlib.Path)
    args = parser.parse_args(argv)
    client = kubernetes.config.new_client_from_config(config_file=args.kubeconfig)
    provisioner = Provisioner(
        kubernetes.client.CoreV1Api(client), kubernetes.client.StorageV1Api(client), args.root
    )
    args.root.mkdir(parents=True, exist_ok=True)
    print(f"provisioner {PROVISIONER}: volumes under {args.root}", flush=True)
    while True:
        try:
            provisioner.round()
        except Exception as error:  # the API server may be restarting: try again next round
            print(f"provisioner: {error}", file=sys.stderr, flush=True)
        time.sleep(POLL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
