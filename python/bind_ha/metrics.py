"""A small Prometheus text-format registry (the agent needs no client library)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

LabelSet = tuple[tuple[str, str], ...]


@dataclass
class _Family:
    kind: str
    help: str
    samples: dict[LabelSet, float] = field(default_factory=dict)
    reader: Callable[[], float] | None = None  # computed at scrape time


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}

    def declare(
        self, name: str, kind: str, help_text: str, reader: Callable[[], float] | None = None
    ) -> None:
        with self._lock:
            self._families.setdefault(name, _Family(kind, help_text, reader=reader))

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._families[name].samples[tuple(sorted(labels.items()))] = value

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            samples = self._families[name].samples
            samples[key] = samples.get(key, 0.0) + amount

    def remove(self, name: str, **labels: str) -> None:
        with self._lock:
            self._families[name].samples.pop(tuple(sorted(labels.items())), None)

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            family = self._families[name]
            if family.reader is not None:
                return family.reader()
            return family.samples.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines = []
        with self._lock:
            for name, family in sorted(self._families.items()):
                lines += [f"# HELP {name} {family.help}", f"# TYPE {name} {family.kind}"]
                samples = dict(family.samples)
                if family.reader is not None:
                    samples = {(): family.reader()}
                if not samples and family.kind == "counter":
                    samples = {(): 0.0}
                for labels, value in sorted(samples.items()):
                    rendered = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
                    lines.append(
                        f"{name}{{{rendered}}} {_format(value)}" if rendered else f"{name} {_format(value)}"
                    )
        return "\n".join(lines) + "\n"
