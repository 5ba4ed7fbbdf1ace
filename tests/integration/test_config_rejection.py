"""A rendering named-checkconf refuses is never applied: real named, real checkconf, real API."""

from __future__ import annotations

import time

import kubernetes
import pytest

from bind_ha import settings as settings_module
from bind_ha.catalog import catalog_for
from bind_ha.clock import SystemClock
from bind_ha.keys import load_keys
from bind_ha.kube import Kube, api_client
from bind_ha.metrics import Metrics
from bind_ha.peers import PRIMARY
from bind_ha.render import BLUE, ViewSpec, view_for
from bind_ha.roles import ConfigRejected, LocalBind
from bind_ha.runstate import RunDir
from bind_ha.startup import local_bind
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
    kube = Kube(settings, api_client(settings))
    metrics = Metrics()
    metrics.declare("bind_ha_reconfiguration_failures_total", "counter", "as the agent declares it")
    local = LocalBind(
        settings=settings,
        keys=load_keys(settings),
        bind=local_bind(settings),
        catalog=catalog_for(settings),
        run=RunDir(settings.run_dir),
        metrics=metrics,
        clock=SystemClock(),
        events=lambda reason, message, warning: kube.event(reason, message, warning=warning, timeout=5),
    )
    broken_zone = ZoneSpec(name='unterminated"quote', type="static", text="", origin="test")
    view = view_for(settings, local.keys, views=(ViewSpec(BLUE, PRIMARY),), zones=(broken_zone,), peers=())
    for _attempt in range(2):
        with pytest.raises(ConfigRejected):
            local.apply(view)
    assert (pod.run_dir / "named.conf").read_text() == running
    assert metrics.value("bind_ha_reconfiguration_failures_total") == 2
    assert dnsclient.serial(pod.address, DNS_PORT, "example.test") is not None  # still serving
    core = kubernetes.client.CoreV1Api(release.api_client)
    deadline = time.monotonic() + 10
    while not (
        rejected := [
            e for e in core.list_namespaced_event(release.namespace).items if e.reason == "ReconfigureFailed"
        ]
    ):
        assert time.monotonic() < deadline, "no ReconfigureFailed event"
        time.sleep(0.1)
    time.sleep(1)
    rejected = [
        e for e in core.list_namespaced_event(release.namespace).items if e.reason == "ReconfigureFailed"
    ]
    assert len(rejected) == 1, "the same rejected rendering is reported once, not every round"
