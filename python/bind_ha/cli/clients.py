"""`bind-ha client-config`: the exact settings of each RFC 2136 client for a live release (pure).

Every recipe points at the primary Service (the one address that always reaches the pod
accepting updates, through failovers), names the update key and its algorithm in that
client's own spelling, and says how the client gets the secret: mounted or referenced
from a Secret, never printed and never put on a command line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bind_ha.requests import RequestError, zone_name
from bind_ha.settings import TSIG_ALGORITHMS

CLIENTS = ("external-dns", "cert-manager", "lego", "nsupdate")
DEFAULT_CLIENT_NAMESPACE = {"external-dns": "external-dns", "cert-manager": "cert-manager"}
SECRET_KEY = "update-secret"  # the Secret's key holding the update key (chart/templates/tsig-secret.yaml)
# A client of this kind uses, when the release has one, a narrowed key of this preset (tsig.clients).
PRESET_FOR_CLIENT = {"external-dns": "external-dns", "cert-manager": "acme", "lego": "acme"}
ZONE_PLACEHOLDER = "ZONE"

KEY_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?\.?$")
SECRET_ITEM = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# cert-manager's rfc2136 solver knows only these (hmac-sha224 and hmac-sha384 cannot work with it).
CERT_MANAGER_ALGORITHMS = {
    "hmac-md5": "HMACMD5",
    "hmac-sha1": "HMACSHA1",
    "hmac-sha256": "HMACSHA256",
    "hmac-sha512": "HMACSHA512",
}


class ClientConfigError(ValueError):
    """The release's settings cannot be used by that client, or are not what they should be."""


@dataclass(frozen=True)
class ClientSettings:
    """What a client needs to know about a release (from its StatefulSet and primary Service)."""

    release: str
    namespace: str
    service: str  # the primary Service
    port: int
    key_name: str
    algorithm: str  # BIND's spelling, e.g. hmac-sha256
    secret_name: str
    zones: tuple[str, ...] = ()  # the zones the release serves, as a hint
    external: str | None = None  # an address outside the cluster, when the Service has one
    secret_key: str = SECRET_KEY  # the Secret's key holding this key's secret (client-NAME for tsig.clients)

    def check(self) -> None:
        """The values come from the cluster: refuse anything that is not a plain name."""
        for what, value in (("namespace", self.namespace), ("service", self.service)):
            if not K8S_NAME.match(value):
                raise ClientConfigError(f"{what} {value!r} is not a Kubernetes name")
        if not K8S_NAME.match(self.secret_name):
            raise ClientConfigError(f"the TSIG Secret name {self.secret_name!r} is not a Kubernetes name")
        if not KEY_NAME.match(self.key_name):
            raise ClientConfigError(f"BIND_HA_UPDATE_KEY_NAME {self.key_name!r} is not a key name")
        if not SECRET_ITEM.match(self.secret_key):
            raise ClientConfigError(f"the Secret key {self.secret_key!r} is not a Secret data key")
        if self.algorithm not in TSIG_ALGORITHMS:
            raise ClientConfigError(
                f"BIND_HA_TSIG_ALGORITHM {self.algorithm!r} must be one of {', '.join(TSIG_ALGORITHMS)}"
            )
        if not 0 < self.port < 65536:
            raise ClientConfigError(f"the primary Service's port {self.port} is not a port")

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc"


# ---- the algorithm, as each client spells it ------------------------------------------


def cert_manager_algorithm(algorithm: str) -> str:
    try:
        return CERT_MANAGER_ALGORITHMS[algorithm]
    except KeyError:
        raise ClientConfigError(
            f"cert-manager cannot use {algorithm}: its rfc2136 solver accepts only "
            f"{', '.join(sorted(CERT_MANAGER_ALGORITHMS.values()))}. Install the release with "
            "tsig.algorithm hmac-sha256 or hmac-sha512 to use cert-manager."
        ) from None


def external_dns_algorithm(algorithm: str) -> str:
    """--rfc2136-tsig-secret-alg takes BIND's lower-case names."""
    return algorithm


def lego_algorithm(algorithm: str) -> str:
    """lego takes miekg/dns's names: BIND's, as a fully qualified name."""
    return algorithm + "."


def nsupdate_algorithm(algorithm: str) -> str:
    return algorithm


# ---- the recipes --------------------------------------------------------------------------


def _zone(settings: ClientSettings, zone: str | None) -> tuple[str, list[str]]:
    """The zone to show, and a comment line about the release's zones when none was chosen."""
    if zone:
        return zone.rstrip("."), []
    names = [zone for zone in settings.zones if _is_zone_name(zone)]  # pods publish them: hostile input
    served = ", ".join(names) if names else "none published yet"
    return ZONE_PLACEHOLDER, [
        f"# {ZONE_PLACEHOLDER}: one of this release's dynamic zones (it serves: {served})"
    ]


def _is_zone_name(text: str) -> bool:
    try:
        return zone_name(text) == text
    except RequestError:
        return False


def _decode(settings: ClientSettings) -> str:
    return (
        f"kubectl get secret -n {settings.namespace} {settings.secret_name} "
        f"-o jsonpath='{{.data.{settings.secret_key}}}' | base64 -d"
    )


def _secret_for(settings: ClientSettings, namespace: str) -> tuple[str, list[str]]:
    """The Secret a client in `namespace` references, and how to make it there if needed."""
    if namespace == settings.namespace:
        return settings.secret_name, []
    copy = f"{settings.release}-bind-ha-{settings.secret_key.removesuffix('-secret')}"
    return copy, [
        f"# A Secret is read only in its own namespace: copy the update key into {namespace},",
        "# without printing it (bash):",
        f"kubectl create secret generic {copy} -n {namespace} \\",
        f"  --from-file={settings.secret_key}=<({_decode(settings)})",
        "",
    ]


def _header(client: str, settings: ClientSettings) -> list[str]:
    return [
        f"# {client} for bind-ha release {settings.release} in namespace {settings.namespace}:",
        f"# server {settings.host} port {settings.port} (the primary Service), "
        f"key {settings.key_name} ({settings.algorithm}).",
    ]


def external_dns(settings: ClientSettings, *, zone: str | None, namespace: str) -> str:
    shown, zone_note = _zone(settings, zone)
    secret, copy = _secret_for(settings, namespace)
    return "\n".join(
        [
            *_header("ExternalDNS v0.23 (provider rfc2136)", settings),
            "# One --rfc2136-host, the primary Service: it always reaches the pod that accepts",
            "# updates, through failovers. Several hosts do not add availability: after the first",
            "# fails, ExternalDNS re-signs the retried UPDATE and sends two TSIG records, which",
            "# BIND rejects with FORMERR. --rfc2136-axfr (the deprecated spelling was",
            "# --rfc2136-tsig-axfr) lists the zone with the same key.",
            *zone_note,
            "",
            *copy,
            f"# The ExternalDNS container (namespace {namespace}):",
            "args:",
            "  - --provider=rfc2136",
            f"  - --rfc2136-host={settings.host}",
            f"  - --rfc2136-port={settings.port}",
            f"  - --rfc2136-zone={shown}",
            f"  - --rfc2136-tsig-keyname={settings.key_name}",
            f"  - --rfc2136-tsig-secret-alg={external_dns_algorithm(settings.algorithm)}",
            "  - --rfc2136-axfr",
            "env:",
            "  - name: EXTERNAL_DNS_RFC2136_TSIG_SECRET",
            "    valueFrom:",
            "      secretKeyRef:",
            f"        name: {secret}",
            f"        key: {settings.secret_key}",
            "",
            "# Names to publish: annotate Services and Ingresses with the prefix",
            f"# external-dns.kubernetes.io/, e.g. external-dns.kubernetes.io/hostname: www.{shown}",
            "# (the external-dns.alpha.kubernetes.io/ prefix is read only with a legacy flag).",
            "",
        ]
    )


def cert_manager(settings: ClientSettings, *, zone: str | None, namespace: str) -> str:
    algorithm = cert_manager_algorithm(settings.algorithm)
    shown, zone_note = _zone(settings, zone)
    secret, copy = _secret_for(settings, namespace)
    return "\n".join(
        [
            *_header("cert-manager (ACME DNS-01, rfc2136 solver)", settings),
            f"# cert-manager spells {settings.algorithm} as {algorithm}. A ClusterIssuer reads its",
            f"# Secret from cert-manager's own namespace ({namespace} here), an Issuer from its own.",
            *zone_note,
            "",
            *copy,
            "# In the Issuer's or ClusterIssuer's spec.acme.solvers:",
            "- selector:",
            "    dnsZones:",
            f"      - {shown}",
            "  dns01:",
            "    rfc2136:",
            f"      nameserver: {settings.host}:{settings.port}",
            f"      tsigKeyName: {settings.key_name}",
            f"      tsigAlgorithm: {algorithm}",
            "      tsigSecretSecretRef:",
            f"        name: {secret}",
            f"        key: {settings.secret_key}",
            "",
        ]
    )


def lego(settings: ClientSettings, *, zone: str | None, namespace: str) -> str:
    shown, zone_note = _zone(settings, zone)
    secret, copy = _secret_for(settings, namespace)
    mount = "/etc/bind-ha-update"
    return "\n".join(
        [
            *_header("lego (DNS-01, provider rfc2136)", settings),
            "# lego v4 reads RFC2136_*; v5 (provider dnsupdate, alias rfc2136) reads DNSUPDATE_*",
            "# and falls back to these. The secret comes from a file (the _FILE suffix).",
            *zone_note,
            "",
            *copy,
            f"# In a pod (namespace {namespace}): the Secret as a file, and the environment.",
            "volumes:",
            "  - name: bind-ha-update",
            "    secret:",
            f"      secretName: {secret}",
            "      items:",
            f"        - key: {settings.secret_key}",
            f"          path: {settings.secret_key}",
            "volumeMounts:",
            "  - name: bind-ha-update",
            f"    mountPath: {mount}",
            "    readOnly: true",
            "env:",
            "  - name: RFC2136_NAMESERVER",
            f'    value: "{settings.host}:{settings.port}"',
            "  - name: RFC2136_TSIG_KEY",
            f"    value: {settings.key_name}",
            "  - name: RFC2136_TSIG_ALGORITHM",
            f"    value: {lego_algorithm(settings.algorithm)}",
            "  - name: RFC2136_TSIG_SECRET_FILE",
            f"    value: {mount}/{settings.secret_key}",
            f"# then: lego --dns rfc2136 --domains www.{shown} ... run",
            "",
        ]
    )


def nsupdate(settings: ClientSettings, *, zone: str | None, namespace: str) -> str:
    del namespace  # nsupdate runs wherever its key file is
    shown, zone_note = _zone(settings, zone)
    keyfile = f"{settings.key_name.rstrip('.')}.key"
    algorithm = nsupdate_algorithm(settings.algorithm)
    key_statement = f'key "{settings.key_name}" {{\\n\\talgorithm {algorithm};\\n\\tsecret "'
    return "\n".join(
        [
            *_header("nsupdate (BIND 9)", settings),
            *zone_note,
            "",
            "# The key file, written from the Secret without showing the secret (bash):",
            f"( umask 077; {{ printf '{key_statement}'",
            f"  {_decode(settings)} | tr -d '\\n'",
            f"  printf '\";\\n}};\\n'; }} > {keyfile} )",
            "",
            "# In the cluster (the Service name resolves there):",
            f"nsupdate -k {keyfile} <<'EOF'",
            f"server {settings.host} {settings.port}",
            f"zone {shown}",
            f'update add test.{shown}. 60 TXT "hello"',
            "send",
            "EOF",
            "",
            "# From a workstation: through a port-forward, which carries TCP only (nsupdate -v):",
            f"#   kubectl port-forward -n {settings.namespace} service/{settings.service} "
            f"5354:{settings.port} &",
            f"#   nsupdate -v -k {keyfile}, with: server 127.0.0.1 5354",
            *(
                [f"# or at the primary Service's external address {settings.external}"]
                if settings.external
                else []
            ),
            "",
        ]
    )


RECIPES = {"external-dns": external_dns, "cert-manager": cert_manager, "lego": lego, "nsupdate": nsupdate}


def recipe(
    client: str, settings: ClientSettings, *, zone: str | None = None, namespace: str | None = None
) -> str:
    """The settings for one client; ClientConfigError when the release cannot serve it."""
    settings.check()
    if zone is not None:
        try:
            zone = zone_name(zone)
        except RequestError as error:
            raise ClientConfigError(f"--zone: {error}") from None
    where = namespace or DEFAULT_CLIENT_NAMESPACE.get(client, settings.namespace)
    if not K8S_NAME.match(where):
        raise ClientConfigError(f"--client-namespace {where!r} is not a namespace name")
    return RECIPES[client](settings, zone=zone, namespace=where)
