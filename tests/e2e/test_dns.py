"""DNS through the Services, as clients inside the cluster see it: queries through the DNS
Service's ClusterIP (UDP and TCP) are answered authoritatively, and a signed update through
the primary Service is read back from every pod."""

from __future__ import annotations

import pathlib
import secrets
from collections.abc import Iterator

import pytest
import yaml
from pytest_helm_charts.clusters import Cluster
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from tests.harness.release import ClientPod, Kube, Release, wait_for

STATIC = "example.com"
DYNAMIC = "dyn.example.com"
VALUES = {
    "zones": [
        {
            "name": STATIC,
            "nameservers": [f"ns1.{STATIC}."],
            "records": "ns1 IN A 192.0.2.53\nwww IN A 192.0.2.80\n",
        },
        {"name": DYNAMIC, "type": "dynamic", "ttl": 60, "nameservers": [f"ns1.{STATIC}."]},
    ]
}


@pytest.fixture(scope="module")
def release(kube: Kube, kube_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    namespace = kube.restricted_namespace("e2e-dns")
    values = pathlib.Path(tmp_path_factory.mktemp("values")) / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    release = Release(kube, namespace)
    release.install(str(values))
    wait_for_stateful_sets_to_run(kube_cluster.kube_client, [release.fullname], namespace, 300)
    release.wait_one_primary()
    yield release
    kube.delete_namespace(namespace)


@pytest.fixture(scope="module")
def dns_client(kube: Kube, release: Release, image: str) -> ClientPod:
    client = ClientPod(kube, release.namespace, image).start()
    # Ready pods are not yet reachable: kube-proxy programs a Service once it sees endpoints.
    for service in ("dns", "primary"):
        address = release.service_ip(service)
        wait_for(
            f"the {service} Service to answer", lambda a=address: client.dig(a, STATIC).status == "NOERROR"
        )
    return client


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_queries_through_the_dns_service_are_authoritative(
    release: Release, dns_client: ClientPod, tcp: bool
) -> None:
    service = release.service_ip("dns")
    soa = dns_client.dig(service, STATIC, "SOA", tcp=tcp)
    assert soa.status == "NOERROR" and soa.authoritative, soa
    www = dns_client.dig(service, f"www.{STATIC}", "A", tcp=tcp)
    assert www.status == "NOERROR" and www.authoritative and www.answers == ("192.0.2.80",), www
    missing = dns_client.dig(service, f"nothing.{STATIC}", "A", tcp=tcp)
    assert missing.status == "NXDOMAIN" and missing.authoritative, missing
    # The cluster's resolver (CoreDNS) finds the Service by name, as clients' configs name it.
    by_name = dns_client.dig(f"{release.fullname}-dns.{release.namespace}.svc.cluster.local", STATIC, tcp=tcp)
    assert by_name.status == "NOERROR" and by_name.authoritative, by_name


def test_a_signed_update_through_the_primary_service_reaches_every_pod(
    release: Release, dns_client: ClientPod
) -> None:
    primary = release.service_ip("primary")
    token = secrets.token_hex(8)
    name = f"e2e-{token}.{DYNAMIC}."
    key = f"hmac-sha256:bind-ha-update:{release.update_secret()}"
    dns_client.nsupdate(primary, [f"zone {DYNAMIC}", f'update add {name} 60 TXT "{token}"'], key=key)
    pods = release.pod_ips()
    assert len(pods) == 3

    def everywhere() -> bool:
        answers = [dns_client.dig(ip, name, "TXT", port=5353) for ip in pods.values()]
        return all(a.authoritative and a.answers == (f'"{token}"',) for a in answers)

    wait_for(f"{name} on every pod", everywhere, timeout=30)
    through_service = dns_client.dig(release.service_ip("dns"), name, "TXT")
    assert through_service.answers == (f'"{token}"',) and through_service.authoritative


def test_an_unsigned_update_is_refused(release: Release, dns_client: ClientPod) -> None:
    script = (
        f"server {release.service_ip('primary')} 53\nzone {DYNAMIC}\nupdate add x.{DYNAMIC}. 60 TXT x\nsend\n"
    )
    result = dns_client.run("nsupdate", "-v", stdin=script, check=False)
    assert result.returncode != 0 and "REFUSED" in result.stdout + result.stderr
