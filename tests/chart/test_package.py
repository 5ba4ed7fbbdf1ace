"""The chart's copy of the scripts follows python/bind_ha and hooks/ (one source of truth).

chart/files/bind_ha and chart/files/hooks are symlinks to ../../python/bind_ha and
../../hooks; helm resolves them when it loads, lints and packages the chart. These
tests look at what `helm package` produced, so they fail if the links break, are
replaced by a stale copy, or pick up files that are not the package's.
"""

from __future__ import annotations

import pathlib
import shutil
import tarfile

import pytest

from tests.chart.helm import CHART, helm, parse, render_text
from tests.harness.tools import REPO


def sources() -> dict[str, bytes]:
    """What the pods must run: python/bind_ha/*.py + named.conf.j2, and hooks/*.py."""
    package = REPO / "python" / "bind_ha"
    files = {f"files/bind_ha/{p.name}": p.read_bytes() for p in sorted(package.glob("*.py"))}
    files["files/bind_ha/named.conf.j2"] = (package / "named.conf.j2").read_bytes()
    files |= {f"files/hooks/{p.name}": p.read_bytes() for p in sorted((REPO / "hooks").glob("*.py"))}
    return files


def package(chart: pathlib.Path, destination: pathlib.Path) -> pathlib.Path:
    helm("package", str(chart), "--destination", str(destination))
    (archive,) = destination.glob("bind-ha-*.tgz")
    return archive


def packaged_files(archive: pathlib.Path) -> dict[str, bytes]:
    """files/... members of the package (paths relative to the chart)."""
    found = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            relative = member.name.split("/", 1)[1]
            if relative.startswith("files/"):
                assert member.isfile(), f"{member.name} is not a regular file in the package"
                extracted = tar.extractfile(member)
                assert extracted is not None
                found[relative] = extracted.read()
    return found


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return package(CHART, tmp_path_factory.mktemp("package"))


def test_chart_files_link_to_the_sources() -> None:
    assert (CHART / "files" / "bind_ha").resolve() == (REPO / "python" / "bind_ha").resolve()
    assert (CHART / "files" / "hooks").resolve() == (REPO / "hooks").resolve()


def test_packaged_scripts_equal_the_sources(archive: pathlib.Path) -> None:
    packaged = packaged_files(archive)
    expected = sources()
    missing = sorted(set(expected) - set(packaged))
    extra = sorted(set(packaged) - set(expected))
    assert not missing, f"helm package left out {missing}"
    assert not extra, f"helm package added files that are not the agent's sources: {extra}"
    stale = sorted(name for name in expected if packaged[name] != expected[name])
    assert not stale, f"the chart's copy differs from the sources: {stale}"


def test_packaged_chart_renders_the_sources_into_configmaps(archive: pathlib.Path) -> None:
    """What the pods mount, rendered from the package itself, is the sources byte for byte."""
    manifests = parse(render_text(chart=archive))
    expected = sources()
    package = manifests.scripts("python")["data"]
    hooks = manifests.scripts("hooks")["data"]
    mounted = {f"files/bind_ha/{k}": v.encode() for k, v in package.items()}
    mounted |= {f"files/hooks/{k}": v.encode() for k, v in hooks.items()}
    assert mounted == expected


def test_a_stale_copy_is_detected(tmp_path: pathlib.Path) -> None:
    """The comparison above fails for a chart whose copy drifted (here: a hand-made copy)."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    drifted = copy / "files" / "bind_ha" / "settings.py"
    drifted.write_text(drifted.read_text() + "# drifted\n")
    packaged = packaged_files(package(copy, tmp_path / "out"))
    expected = sources()
    assert packaged["files/bind_ha/settings.py"] != expected["files/bind_ha/settings.py"]


def test_bytecode_and_caches_are_not_packaged(tmp_path: pathlib.Path) -> None:
    """.helmignore keeps __pycache__ and *.pyc out, wherever python/ left them."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    cache = copy / "files" / "bind_ha" / "__pycache__"
    cache.mkdir()
    (cache / "settings.cpython-311.pyc").write_bytes(b"\0bytecode")
    (copy / "files" / "hooks" / "stray.pyc").write_bytes(b"\0bytecode")
    names = set(packaged_files(package(copy, tmp_path / "out")))
    assert not {name for name in names if "__pycache__" in name or name.endswith(".pyc")}


def test_packaged_chart_keeps_its_metadata(archive: pathlib.Path) -> None:
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for required in ("Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates/NOTES.txt"):
        assert f"bind-ha/{required}" in names
    assert "bind-ha/README.md.gotmpl" not in names
