"""Control of the local named: rndc, named-checkconf and DNS queries to it."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from bind_ha import soa
from bind_ha.keys import TsigKey

log = logging.getLogger("bind_ha.bind")
RNDC_TIMEOUT = 10.0
ALIVE_TIMEOUT = 2.0
# A freeze or thaw of every zone takes tens of milliseconds; one that does not return in
# this long finds named hung, and the caller must not wait as long as a reconfig may take.
FENCE_TIMEOUT = 2.0


class BindError(RuntimeError):
    """named refused or failed a command; the message carries its answer."""


@dataclass(frozen=True)
class Bind:
    rndc_conf: Path
    dns_address: str
    dns_port: int
    timeout: float = RNDC_TIMEOUT

    def rndc(self, *args: str, timeout: float | None = None) -> str:
        limit = timeout or self.timeout
        try:
            result = subprocess.run(
                ["rndc", "-c", str(self.rndc_conf), *args],
                capture_output=True,
                text=True,
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BindError(f"rndc {' '.join(args)}: no answer in {limit:g}s") from None
        if result.returncode != 0:
            raise BindError(f"rndc {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
        return result.stdout

    def alive(self) -> bool:
        """named answers its control channel (quickly: this runs every round)."""
        try:
            self.rndc("status", timeout=ALIVE_TIMEOUT)
        except BindError:
            return False
        return True

    def reconfig(self) -> None:
        self.rndc("reconfig")

    # Commands on one zone name its view: with a staging view beside the serving one, a
    # zone may be in both, and rndc refuses a zone "found in multiple views".

    def refresh(self, zone: str, view: str) -> None:
        self.rndc("refresh", zone, "IN", view)

    def retransfer(self, zone: str, view: str) -> None:
        self.rndc("retransfer", zone, "IN", view)

    def reload(self, zone: str, view: str) -> None:
        self.rndc("reload", zone, "IN", view)

    def notify(self, zone: str, view: str) -> None:
        """Send NOTIFY for zone to its also-notify peers now."""
        self.rndc("notify", zone, "IN", view)

    def freeze(self, zone: str, view: str) -> None:
        """Stop updates to one zone and write its journal into its file (for a file swap)."""
        self.rndc("freeze", zone, "IN", view, timeout=FENCE_TIMEOUT)

    def thaw(self, zone: str, view: str) -> None:
        """Reload one frozen zone from its file and take updates again."""
        self.rndc("thaw", zone, "IN", view, timeout=FENCE_TIMEOUT)

    def freeze_all(self) -> None:
        """Stop accepting updates to every dynamic zone, in one command (`rndc freeze` without a
        zone acts on all of them); queries are still answered. Idempotent."""
        try:
            self.rndc("freeze", timeout=FENCE_TIMEOUT)
        except BindError as error:
            if "already frozen" not in str(error):
                raise

    def thaw_all(self) -> None:
        """Accept updates again on every frozen zone (named reloads each from disk, serving the
        old copy meanwhile)."""
        self.rndc("thaw", timeout=FENCE_TIMEOUT)

    def ask(self, zone: str, key: TsigKey | None = None) -> soa.SoaAnswer:
        """Our own named answers in milliseconds; half a second means it is not answering.
        Signed with the pod-local key, the question reaches the staging view (if any)."""
        return soa.ask(zone, self.dns_address, self.dns_port, timeout=0.5, key=key)

    def serial(self, zone: str, key: TsigKey | None = None) -> int | None:
        """The SOA serial named serves authoritatively for zone, or None."""
        return self.ask(zone, key).serial

    def set_serial(self, zone: str, serial: int, key: TsigKey) -> None:
        """Raise a dynamic zone's serial with an UPDATE of its SOA signed with key (the pod-local
        key: it reaches the staging view when there is one).

        An UPDATE (unlike `rndc signing -serial`) is journaled like any other change.
        """
        keyring = dns.tsigkeyring.from_text({key.name: (key.algorithm, key.secret)})
        try:
            question = dns.message.make_query(zone, dns.rdatatype.SOA)
            question.use_tsig(keyring, keyname=dns.name.from_text(key.name))
            reply = dns.query.udp(question, self.dns_address, port=self.dns_port, timeout=2)
            current = reply.find_rrset(
                reply.answer, dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.SOA
            )
            soa_record = current[0]
            update = dns.update.UpdateMessage(zone, keyring=keyring, keyname=dns.name.from_text(key.name))
            update.replace(
                "@",
                current.ttl,
                "SOA",
                f"{soa_record.mname} {soa_record.rname} {serial} "
                f"{soa_record.refresh} {soa_record.retry} {soa_record.expire} {soa_record.minimum}",
            )
            answer = dns.query.tcp(update, self.dns_address, port=self.dns_port, timeout=self.timeout)
        except (OSError, KeyError, dns.exception.DNSException) as error:  # KeyError: no SOA answered
            raise BindError(f"serial update of {zone} to {serial}: {type(error).__name__}: {error}") from None
        if answer.rcode() != dns.rcode.NOERROR:
            raise BindError(f"serial update of {zone} to {serial}: {dns.rcode.to_text(answer.rcode())}")


def checkconf(conf: Path) -> str | None:
    """named-checkconf's complaint about conf, or None when it is valid."""
    try:
        result = subprocess.run(
            ["named-checkconf", str(conf)], capture_output=True, text=True, timeout=RNDC_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return f"named-checkconf gave no verdict within {RNDC_TIMEOUT:g}s"
    if result.returncode == 0:
        return None
    return (result.stdout + result.stderr).strip() or "named-checkconf failed"
