"""The command line: kubectl's flags wherever they are given, kubeconfig lookup, exit codes."""

from __future__ import annotations

import pathlib

import pytest

from bind_ha.cli import api, main
from bind_ha.cli.api import CommandError
from tests.unit.cli_views import write_kubeconfig


def parse(*argv: str) -> object:
    return main.parser("bind-ha").parse_args(list(argv))


def test_connection_flags_go_before_or_after_the_command() -> None:
    before = parse("-n", "dns", "--context", "prod", "--kubeconfig", "/k", "status", "test")
    after = parse("status", "test", "-n", "dns", "--context", "prod", "--kubeconfig", "/k")
    for args in (before, after):
        assert (args.namespace, args.context, args.kubeconfig, args.release) == ("dns", "prod", "/k", "test")  # type: ignore[attr-defined]
    defaults = parse("status")
    assert (defaults.namespace, defaults.context, defaults.request_timeout) == (None, None, 10.0)  # type: ignore[attr-defined]


def test_each_command_has_its_options() -> None:
    status = parse("status", "-o", "json", "--watch", "--count", "3", "--interval", "0.5")
    assert (status.output, status.watch, status.count, status.interval) == ("json", True, 3, 0.5)  # type: ignore[attr-defined]
    switchover = parse("switchover", "--to", "p-1", "--wait", "5")
    assert (switchover.to, switchover.wait, switchover.release) == ("p-1", 5.0, None)  # type: ignore[attr-defined]
    assert parse("failover", "dns", "--to", "p-2", "--force").force is True  # type: ignore[attr-defined]
    assert parse("pause").wait == 0.0  # type: ignore[attr-defined]
    config = parse("client-config", "cert-manager", "dns", "--zone", "k8s.example.com")
    assert (config.client, config.release, config.zone) == ("cert-manager", "dns", "k8s.example.com")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "-o", "xml"],
        ["failover"],
        ["switchover", "--wait", "-1"],
        ["switchover", "--wait", "7200"],
        ["status", "--watch", "--interval", "0"],
        ["client-config", "bind"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2


def test_reseed_takes_an_optional_release_then_zones() -> None:
    assert main.reseed_arguments(["dyn.test"])[0] is None
    release, reseed = main.reseed_arguments(["dns", "dyn.test,Other.Test."])
    assert release == "dns" and reseed.zones == ("dyn.test", "other.test")
    with pytest.raises(CommandError, match="separate several zones with commas"):
        main.reseed_arguments(["dns", "a.test", "b.test"])
    with pytest.raises(CommandError, match="not a zone name"):
        main.reseed_arguments(["a b"])


def test_kubeconfig_is_found_as_kubectl_finds_it(tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("x")
    second.write_text("x")
    assert api._kubeconfig_path(str(first), {"KUBECONFIG": str(second)}) == str(first)
    listed = f"{tmp_path / 'missing'}:{first}:{second}"
    assert api._kubeconfig_path(None, {"KUBECONFIG": listed}) == f"{first}:{second}"
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    assert api._kubeconfig_path(None, {"HOME": str(home)}) is None
    (home / ".kube" / "config").write_text("x")
    assert api._kubeconfig_path(None, {"HOME": str(home)}) == str(home / ".kube" / "config")
    with pytest.raises(CommandError, match="no such file"):
        api._kubeconfig_path(str(tmp_path / "nope"), {})
    with pytest.raises(CommandError, match="none of these files exists"):
        api._kubeconfig_path(None, {"KUBECONFIG": str(tmp_path / "nope")})


def test_without_any_configuration_the_command_says_what_to_do(tmp_path: pathlib.Path) -> None:
    with pytest.raises(CommandError, match="no kubeconfig: pass --kubeconfig"):
        api.connect(kubeconfig=None, context=None, namespace=None, env={"HOME": str(tmp_path)})


def test_a_bad_context_or_file_is_a_usage_error(tmp_path: pathlib.Path) -> None:
    config = write_kubeconfig(tmp_path / "config", "https://127.0.0.1:1", namespace="dns")
    connection = api.connect(kubeconfig=str(config), context=None, namespace=None, env={})
    assert (connection.namespace, connection.server, connection.user) == ("dns", "https://127.0.0.1:1", "u")
    assert api.connect(kubeconfig=str(config), context="a", namespace="other", env={}).namespace == "other"
    assert (
        api.connect(
            kubeconfig=str(write_kubeconfig(config, "https://h:1")), context=None, namespace=None, env={}
        ).namespace
        == "default"
    )
    with pytest.raises(CommandError):
        api.connect(kubeconfig=str(config), context="nope", namespace=None, env={})
    config.write_text("not: [a kubeconfig")
    with pytest.raises(CommandError):
        api.connect(kubeconfig=str(config), context=None, namespace=None, env={})
