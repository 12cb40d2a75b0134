"""Redis 7 functions (FUNCTION LOAD ..., FCALL), read-only scripts,
publishing and pub/sub introspection, WAIT, SWAPDB, replication switches,
and the commands that change their connection's state (SELECT, AUTH,
HELLO, QUIT, RESET, CLIENT REPLY/TRACKING), with redis-py's method names.

The last group runs only where the connection is the caller's own
(``client.dedicated()``, a pipeline after ``watch()``); on the shared
connection it raises ``ResponseError`` saying what to use instead, before
anything is sent (``_exclusive``). ``pubsub()`` and ``monitor()`` raise at
once: pub/sub comes with a later issue, MONITOR is not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _redis_commands_support as s
from ._errors import DataError, PubSubError, ResponseError
from ._redis_commands_support import Caller, Key, Value


def _numsub(reply: Any) -> list[tuple[Any, int]]:
    it = iter(reply or ())
    return [(ch, int(n)) for ch, n in zip(it, it)]


class FunctionAndConnectionCommands(Caller):
    """FUNCTION ..., FCALL, EVAL_RO, PUBLISH, PUBSUB ..., WAIT, SWAPDB,
    REPLICAOF, and SELECT & co. (dedicated connections only)."""

    # -- functions and read-only scripts ---------------------------------------

    def function_load(self, code: str, replace: bool | None = False) -> Any:
        """The library's name."""
        return self._call((b"FUNCTION", b"LOAD", *s.flags(replace=bool(replace)), code))

    def function_delete(self, library: str) -> Any:
        return self._call((b"FUNCTION", b"DELETE", library), s.ok)

    def function_flush(self, mode: str = "SYNC") -> Any:
        return self._call((b"FUNCTION", b"FLUSH", mode), s.ok)

    def function_list(self, library: str | None = "*", withcode: bool | None = False) -> Any:
        args: list[Any] = [b"FUNCTION", b"LIST"]
        if library is not None:
            args += [b"LIBRARYNAME", library]
        if withcode:
            args.append(b"WITHCODE")
        return self._call(tuple(args))

    def function_dump(self) -> Any:
        """The serialized libraries: bytes, whatever ``decode_responses`` says."""
        return self._call_undecoded((b"FUNCTION", b"DUMP"))

    def function_restore(self, payload: bytes, policy: str | None = "APPEND") -> Any:
        return self._call((b"FUNCTION", b"RESTORE", payload, *(() if policy is None else (policy,))),
                          s.ok)

    def function_stats(self) -> Any:
        return self._call((b"FUNCTION", b"STATS"))

    def function_kill(self) -> Any:
        return self._call((b"FUNCTION", b"KILL"))

    def fcall(self, function: Key, numkeys: int, *keys_and_args: Value) -> Any:
        return self._call((b"FCALL", function, numkeys, *keys_and_args))

    def fcall_ro(self, function: Key, numkeys: int, *keys_and_args: Value) -> Any:
        return self._call((b"FCALL_RO", function, numkeys, *keys_and_args))

    def eval_ro(self, script: Key, numkeys: int, *keys_and_args: Value) -> Any:
        return self._call((b"EVAL_RO", script, numkeys, *keys_and_args))

    def evalsha_ro(self, sha: Key, numkeys: int, *keys_and_args: Value) -> Any:
        return self._call((b"EVALSHA_RO", sha, numkeys, *keys_and_args))

    def script_kill(self) -> Any:
        return self._call((b"SCRIPT", b"KILL"), s.ok)

    # -- publishing and pub/sub introspection ----------------------------------

    def publish(self, channel: Key, message: Value) -> Any:
        """How many subscribers got ``message``."""
        return self._call((b"PUBLISH", channel, message))

    def spublish(self, shard_channel: Key, message: Value) -> Any:
        return self._call((b"SPUBLISH", shard_channel, message))

    def pubsub_channels(self, pattern: Key = "*") -> Any:
        return self._call((b"PUBSUB", b"CHANNELS", pattern))

    def pubsub_shardchannels(self, pattern: Key = "*") -> Any:
        return self._call((b"PUBSUB", b"SHARDCHANNELS", pattern))

    def pubsub_numpat(self) -> Any:
        return self._call((b"PUBSUB", b"NUMPAT"))

    def pubsub_numsub(self, *args: Key) -> Any:
        """``[(channel, subscribers)]``."""
        return self._call((b"PUBSUB", b"NUMSUB", *args), _numsub)

    def pubsub_shardnumsub(self, *args: Key) -> Any:
        return self._call((b"PUBSUB", b"SHARDNUMSUB", *args), _numsub)

    def pubsub(self, **kwargs: Any) -> Any:
        raise PubSubError(
            "pub/sub is not supported yet by iokernel (it comes with a later release); "
            "use redis-py's pubsub() for subscriptions; publish() works here"
        )

    def monitor(self) -> Any:
        raise ResponseError(s.REFUSED_ON_SHARED["MONITOR"])

    # -- replication and databases ----------------------------------------------

    def wait(self, num_replicas: int, timeout: int) -> Any:
        """How many replicas acknowledged (blocks: runs on a connection of its own)."""
        return self._call((b"WAIT", num_replicas, timeout))

    def waitaof(self, num_local: int, num_replicas: int, timeout: int) -> Any:
        return self._call((b"WAITAOF", num_local, num_replicas, timeout))

    def swapdb(self, first: int, second: int) -> Any:
        return self._call((b"SWAPDB", first, second), s.ok)

    def replicaof(self, *args: Any) -> Any:
        """``replicaof("NO", "ONE")`` or ``replicaof(host, port)``."""
        return self._call((b"REPLICAOF", *args))

    def slaveof(self, host: str | None = None, port: int | None = None) -> Any:
        if host is None and port is None:
            return self._call((b"SLAVEOF", b"NO", b"ONE"), s.ok)
        return self._call((b"SLAVEOF", host, port), s.ok)

    # -- state of the connection: dedicated connections only --------------------

    def _exclusive(self, args: tuple[Any, ...], post: Any = None) -> Any:
        if not self._own_connection():
            raise ResponseError(s.shared_connection_refusal(args) or f"{args[0]!r} is refused")
        return self._call(args, post)

    def select(self, index: int) -> Any:
        """On ``dedicated()`` only: the shared connection stays in the URL's database."""
        return self._exclusive((b"SELECT", index), s.ok)

    def auth(self, password: str, username: str | None = None) -> Any:
        return self._exclusive((b"AUTH", *(() if username is None else (username,)), password),
                               s.ok)

    def hello(self) -> Any:
        return self._exclusive((b"HELLO",))

    def quit(self) -> Any:
        return self._exclusive((b"QUIT",), s.ok)

    def reset(self) -> Any:
        """RESET (a pipeline's own ``reset()`` empties the pipeline instead)."""
        return self._exclusive((b"RESET",))

    def client_reply(self, reply: str) -> Any:
        if reply not in ("ON", "OFF", "SKIP"):
            raise DataError("CLIENT REPLY must be ON, OFF or SKIP")
        return self._exclusive((b"CLIENT", b"REPLY", reply))

    def client_tracking(
        self, on: bool = True, clientid: int | None = None, prefix: Sequence[Key] = (),
        bcast: bool = False, optin: bool = False, optout: bool = False, noloop: bool = False,
    ) -> Any:
        if len(prefix) and not bcast:
            raise DataError("Prefix can only be used with bcast")
        args: list[Any] = [b"CLIENT", b"TRACKING", b"ON" if on else b"OFF"]
        if clientid is not None:
            args += [b"REDIRECT", clientid]
        for p in prefix:
            args += [b"PREFIX", p]
        args += s.flags(bcast=bcast, optin=optin, optout=optout, noloop=noloop)
        return self._exclusive(tuple(args))

    def client_tracking_on(self, clientid: int | None = None, prefix: Sequence[Key] = (),
                           bcast: bool = False, optin: bool = False, optout: bool = False,
                           noloop: bool = False) -> Any:
        return self.client_tracking(True, clientid, prefix, bcast, optin, optout, noloop)

    def client_tracking_off(self, clientid: int | None = None, prefix: Sequence[Key] = (),
                            bcast: bool = False, optin: bool = False, optout: bool = False,
                            noloop: bool = False) -> Any:
        return self.client_tracking(False, clientid, prefix, bcast, optin, optout, noloop)
