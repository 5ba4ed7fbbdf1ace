"""A rendering named-checkconf refuses is never applied: real named, real checkconf, real API."""

from __future__ import annotations

import time

import kubernetes
import pytest

from bind_ha import settings as settings_module
from bind_ha.agent import Agent, ConfigRejected
from bind_ha.bind import Bind
from bind_ha.catalog import Catalog
from bind_ha.clock import SystemClock
from bind_ha.keys import load_keys, rndc_conf_path
from bind_ha.kube import Kube, api_client
from bind_ha.metrics import Metrics
from bind_ha.peers import PRIMARY
from bind_ha.render import view_for
from bind_ha.runstate import RunDir
from bind_ha.zonemodel import ZoneSpec
from tests.harness import dnsclient
from tests.harness.pods import DNS_PORT, LocalRelease


def test_a_rejected_rendering_keeps_the_running_config_and_is_reported(release: LocalRelease) -> None:
    (pod,) = release.add_pods(1)
    pod.start()
    release.wait_for_leader()
    pod.kill_agent()  # from here on, this test drives the agent's code in-process
    running = (pod.run_dir / "named.conf").read_text()
    settings = settings_module.load(pod.env())
    agent = Agent(
        settings=settings,
        kube=Kube(settings, api_client(settings)),
        bind=Bind(rndc_conf_path(settings), settings.local_dns_address, settings.dns_port),
        catalog=Catalog(settings.zones_file, None, "static", settings.run_dir / "scratch"),
        clock=SystemClock(),
        metrics=Metrics(),
        keys=load_keys(settings),
        run=RunDir(settings.run_dir),
    )
    broken_zone = ZoneSpec(name='unterminated"quote', type="static", text="", origin="test")
    view = view_for(settings, agent.keys, role=PRIMARY, zones=(broken_zone,), primary_address=None, peers=())
    with pytest.raises(ConfigRejected):
        agent.apply(view)
    assert (pod.run_dir / "named.conf").read_text() == running
    assert agent.metrics.value("bind_ha_reconfiguration_failures_total") == 1
    assert dnsclient.serial(pod.address, DNS_PORT, "example.test") is not None  # still serving
    core = kubernetes.client.CoreV1Api(release.api_client)
    deadline = time.monotonic() + 10
    while not [
        e for e in core.list_namespaced_event(release.namespace).items if e.reason == "ReconfigureFailed"
    ]:
        assert time.monotonic() < deadline, "no ReconfigureFailed event"
        time.sleep(0.1)
