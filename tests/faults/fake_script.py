"""What the fake Redis server (fakeserver.py) does on cue: the actions (Normal,
Reply, Garbage, CutAndClose, Stall, Delay, HalfClose, Close, Reset) and
ConnScript, the per-connection script that says which counted command gets
which action. See fakeserver.py for how scripts apply.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field


# ------------------------------------------------------------------- actions
class Action:
    """What the server does with one received command (or on accept)."""


@dataclass(frozen=True)
class Normal(Action):
    """Answer like Redis would."""


@dataclass(frozen=True)
class Reply(Action):
    """Send exactly these bytes as the reply."""

    data: bytes


@dataclass(frozen=True)
class Garbage(Action):
    """Send bytes that are not RESP (by default a reply type byte no RESP version has)."""

    data: bytes = b"\x00\xffgarbage that is not RESP\r\n"


@dataclass(frozen=True)
class CutAndClose(Action):
    """Send the first `keep` bytes of `data` and close the connection.

    data defaults to the normal reply of the command; keep defaults to half of
    it (at least 1 byte, never the whole reply).
    """

    data: bytes | None = None
    keep: int | None = None


@dataclass(frozen=True)
class Stall(Action):
    """Answer nothing more on this connection (commands are read and held back).

    heal() makes a stalled connection answer what it held, in order.
    """


@dataclass(frozen=True)
class Delay(Action):
    """Answer with `then` after `seconds` (and hold back every later reply)."""

    seconds: float
    then: Action = Normal()


@dataclass(frozen=True)
class HalfClose(Action):
    """Send `data`, then shutdown(SHUT_WR): the client reads EOF; we keep reading."""

    data: bytes = b""


@dataclass(frozen=True)
class Close(Action):
    """Send `data` (if any), then close the connection."""

    data: bytes = b""


@dataclass(frozen=True)
class Reset(Action):
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""


ActionLike = Action | Callable[[list[bytes]], Action]


@dataclass
class ConnScript:
    on_accept: Action | None = None
    actions: Sequence[ActionLike] = ()
    then: ActionLike = field(default_factory=Normal)
    handshake: bool = True
    only: Collection[str] | None = None

    @classmethod
    def nth(cls, n: int, action: ActionLike, *, then: ActionLike | None = None,
            only: Collection[str] | None = None) -> ConnScript:
        """Normal for counted commands 1..n-1, `action` on the n-th, then `then` (Normal)."""
        if n < 1:
            raise ValueError("n counts from 1")
        return cls(actions=[Normal()] * (n - 1) + [action],
                   then=then if then is not None else Normal(), only=only)

    @classmethod
    def always(cls, action: ActionLike, *, only: Collection[str] | None = None) -> ConnScript:
        return cls(then=action, only=only)
