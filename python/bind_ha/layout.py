"""What named runs, as one value, and the transitions between roles (pure).

A Layout says which view answers everybody and in which role, and which role (if
any) is being loaded in the other view. Every change of role is a switch in three
steps, each a function here that names what it changes:

    stage(layout, role)   the other view starts loading the zones as `role`
    flip(layout)          the staged view answers everybody; the old view goes
    abandon(layout)       the staged view goes; nothing changed for clients

views() turns a Layout into the views named.conf must have. The role file the named
supervisor reads (for its fence) is primary_anywhere(): a staged primary's zones
must be fenced as much as a serving primary's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bind_ha.peers import PRIMARY, ROLES, SECONDARY
from bind_ha.render import ViewSpec, other_view


@dataclass(frozen=True)
class Layout:
    serving: str  # the view that answers everybody (render.BLUE or render.GREEN)
    role: str  # the serving view's role
    staged: str | None = None  # the role loading in the other view; None when no switch is under way

    @property
    def staging(self) -> str:
        return other_view(self.serving)

    @property
    def primary_anywhere(self) -> bool:
        return PRIMARY in (self.role, self.staged)


def stage(layout: Layout, role: str) -> Layout:
    """Start a switch to role: the other view loads the zones beside the serving one."""
    if layout.staged is not None:
        raise ValueError(f"a switch to {layout.staged} is already under way")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return replace(layout, staged=role)


def flip(layout: Layout) -> Layout:
    """Finish a switch: the staged view answers everybody, the old one is dropped."""
    if layout.staged is None:
        raise ValueError("no switch under way")
    return Layout(serving=layout.staging, role=layout.staged)


def abandon(layout: Layout) -> Layout:
    """Give a switch up: the staged view is dropped, the serving one stays as it was."""
    return replace(layout, staged=None)


def views(layout: Layout, *, leader: str | None, writable: frozenset[str]) -> tuple[ViewSpec, ...]:
    """The views for layout. Secondaries (serving or staged) transfer from leader. A serving
    primary takes clients' updates on the dynamic zones in writable; a staged primary on none
    (only the agent's key may update it, to lift serials before clients can write)."""
    serving = ViewSpec(
        name=layout.serving,
        role=layout.role,
        primary_address=leader if layout.role == SECONDARY else None,
        writable=writable if layout.role == PRIMARY else frozenset(),
    )
    if layout.staged is None:
        return (serving,)
    staged = ViewSpec(
        name=layout.staging,
        role=layout.staged,
        staging=True,
        primary_address=leader if layout.staged == SECONDARY else None,
    )
    return (staged, serving)
