"""Control of the local named: rndc, named-checkconf and DNS queries to it."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterable
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

    def refresh(self, zone: str) -> None:
        self.rndc("refresh", zone)

    def retransfer(self, zone: str) -> None:
        self.rndc("retransfer", zone)

    def reload(self, zone: str) -> None:
        self.rndc("reload", zone)

    def each(self, action: Callable[[str], None], zones: Iterable[str]) -> bool:
        """Apply action (e.g. self.freeze) to every zone; log failures; True if all succeeded."""
        succeeded = True
        for zone in zones:
            try:
                action(zone)
            except BindError as error:
                succeeded = False
                log.error("%s %s: %s", getattr(action, "__name__", "rndc"), zone, error)
        return succeeded

    def freeze(self, zone: str) -> None:
        """Stop accepting updates to a dynamic zone; queries are still answered."""
        try:
            self.rndc("freeze", zone)
        except BindError as error:
            if "already frozen" not in str(error):
                raise

    def thaw(self, zone: str) -> None:
        try:
            self.rndc("thaw", zone)
        except BindError as error:
            if "not frozen" not in str(error) and "not dynamic" not in str(error):
                raise

    def ask(self, zone: str) -> soa.SoaAnswer:
        """Our own named answers in milliseconds; half a second means it is not answering."""
        return soa.ask(zone, self.dns_address, self.dns_port, timeout=0.5)

    def serial(self, zone: str) -> int | None:
        """The SOA serial named serves authoritatively for zone, or None."""
        return self.ask(zone).serial

    def set_serial(self, zone: str, serial: int, key: TsigKey) -> None:
        """Raise a dynamic zone's serial with a signed UPDATE of its SOA.

        An UPDATE (unlike `rndc signing -serial`) is journaled and NOTIFYs the
        secondaries like any other change.
        """
        try:
            reply = dns.query.udp(
                dns.message.make_query(zone, dns.rdatatype.SOA),
                self.dns_address,
                port=self.dns_port,
                timeout=2,
            )
            current = reply.find_rrset(
                reply.answer, dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.SOA
            )
            soa_record = current[0]
            keyring = dns.tsigkeyring.from_text({key.name: (key.algorithm, key.secret)})
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
