"""Server and connection introspection commands: CLIENT LIST/INFO/KILL/...,
ACL, SLOWLOG, MEMORY, OBJECT, LATENCY, COMMAND, CONFIG extras, persistence,
with redis-py's names, arguments and reply shapes (see _redis_commands).

Replies take redis-py's RESP2 ("legacy") shapes whatever the wire said.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from ._errors import DataError
from ._redis_commands_support import Caller, Key, ok, text, to_dict

_CLIENT_INTS = frozenset(
    ["id", "age", "idle", "db", "sub", "psub", "multi", "qbuf", "qbuf-free", "obl", "argv-mem", "oll", "omem", "tot-mem"]
)


def client_info(value: Any) -> dict[str, Any]:
    """``k=v k=v`` (CLIENT INFO, ACL LOG's client-info) with redis-py's ints."""
    info: dict[str, Any] = {}
    for item in text(value).strip().split():
        key, _, v = item.partition("=")
        info[key] = int(v) if key in _CLIENT_INTS else v
    return info


def _client_list(reply: Any) -> list[dict[str, str]]:
    clients = []
    for line in text(reply).splitlines():
        entry: dict[str, str] = {}
        last = ""
        for token in line.split(" "):
            if "=" in token:
                last, _, value = token.partition("=")
                entry[last] = value
            elif last:
                entry[last] += " " + token
        clients.append(entry)
    return clients


def _str_dict(reply: Any) -> dict[str, Any]:
    return {text(k): v for k, v in to_dict(reply).items()}


def _text_dict(reply: Any) -> dict[str, Any]:
    return {text(k): text(v) for k, v in to_dict(reply).items()}


def _memory_stats(reply: Any) -> dict[str, Any]:
    stats = _text_dict(reply)
    for key, value in stats.items():
        if key.startswith("db.") and isinstance(value, (list, dict)):
            stats[key] = _text_dict(value)
    return stats


def _slowlog(reply: Any) -> list[dict[str, Any]]:
    out = []
    for item in reply:
        entry: dict[str, Any] = {"id": item[0], "start_time": int(item[1]), "duration": int(item[2])}
        words = item[3]
        space: Any = " " if words and isinstance(words[0], str) else b" "
        entry["command"] = space.join(words)
        if len(item) >= 6:
            entry["client_address"] = item[4]
            entry["client_name"] = item[5]
        out.append(entry)
    return out


def _acl_getuser(reply: Any) -> dict[str, Any] | None:
    if reply is None:
        return None
    data = _str_dict(reply)
    data["flags"] = [text(x) for x in data["flags"]]
    data["passwords"] = [text(x) for x in data["passwords"]]
    for key in ("keys", "channels"):
        if isinstance(data.get(key), (bytes, str)):
            data[key] = [] if not data[key] else text(data[key]).split(" ")
    if data.get("selectors"):
        data["selectors"] = [
            [text(x) for x in sel] if isinstance(sel, list) else
            {text(k): text(v) for k, v in sel.items()}
            for sel in data["selectors"]
        ]
    commands: list[str] = []
    categories: list[str] = []
    for word in text(data["commands"]).split(" "):
        (categories if "@" in word else commands).append(word)
    data["commands"] = commands
    data["categories"] = categories
    data["enabled"] = "on" in data["flags"]
    return data


def _acl_log(reply: Any) -> Any:
    if not isinstance(reply, list):
        return ok(reply)
    out = []
    for log in reply:
        entry = _text_dict(log)
        entry["client-info"] = client_info(entry.get("client-info", ""))
        entry["age-seconds"] = float(entry["age-seconds"])
        out.append(entry)
    return out


def _texts(reply: Any) -> list[str]:
    return [text(x) for x in reply]


#: Key-spec flags in the order the server lists them (its table; RESP2 keeps
#: that order, a RESP3 set does not).
_KEY_FLAGS = ("RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key",
              "incomplete", "variable_flags")


def _flag_rank(flag: Any) -> tuple[int, str]:
    name = flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)
    return (_KEY_FLAGS.index(name) if name in _KEY_FLAGS else len(_KEY_FLAGS), name)


def _keys_and_flags(reply: Any) -> Any:
    """COMMAND GETKEYSANDFLAGS: ``[[key, [flag, ...]], ...]``, the flags in
    the server's order over RESP3 too."""
    return [[key, sorted(flags, key=_flag_rank)] for key, flags in reply]


def _command_info(reply: Any) -> dict[str, Any]:
    """COMMAND: ``{name: {name, arity, flags, first_key_pos, last_key_pos, step_count}}``."""
    out: dict[str, Any] = {}
    for item in reply:
        name = text(item[0])
        out[name] = {
            "name": name,
            "arity": int(item[1]),
            "flags": [text(f) for f in item[2]],
            "first_key_pos": item[3],
            "last_key_pos": item[4],
            "step_count": item[5],
        }
    return out


def _not_implemented(what: str) -> NotImplementedError:
    return NotImplementedError(f"{what} is not supported, as in redis-py; use execute_command()")


def _prefixed(values: Any, what: str, allow_bare: bool = False) -> list[bytes]:
    out = []
    for v in [values] if isinstance(values, (str, bytes)) else values:
        b = v.encode() if isinstance(v, str) else bytes(v)
        if not b.startswith((b"+", b"-")) and not allow_bare:
            raise DataError(f'{what} "{b.decode(errors="replace")}" must be prefixed with "+" or "-"')
        out.append(b)
    return out


class ServerMoreCommands(Caller):
    """CLIENT, ACL, SLOWLOG, MEMORY, OBJECT, LATENCY, COMMAND, CONFIG, persistence."""

    # -- CLIENT --------------------------------------------------------------

    def client_list(self, _type: str | None = None, client_id: Sequence[int] = ()) -> Any:
        """A list of dicts of str, one per connection."""
        args: list[Any] = [b"CLIENT", b"LIST"]
        if _type is not None:
            if _type.lower() not in ("normal", "master", "replica", "pubsub"):
                raise DataError(f"CLIENT LIST _type must be one of normal, master, replica, pubsub, not {_type!r}")
            args += [b"TYPE", _type]
        if not isinstance(client_id, (list, tuple)):
            raise DataError("client_id must be a list")
        if client_id:
            args += [b"ID", *client_id]
        return self._call(tuple(args), _client_list)

    def client_info(self) -> Any:
        return self._call((b"CLIENT", b"INFO"), client_info)

    def client_kill(self, address: str) -> Any:
        return self._call((b"CLIENT", b"KILL", address), ok)

    def client_kill_filter(
        self,
        _id: int | None = None,
        _type: str | None = None,
        addr: str | None = None,
        skipme: bool | None = None,
        laddr: str | None = None,
        user: str | None = None,
        maxage: int | None = None,
    ) -> Any:
        """How many connections were closed."""
        args: list[Any] = []
        if _type is not None:
            if _type.lower() not in ("normal", "master", "slave", "replica", "pubsub"):
                raise DataError(f"CLIENT KILL type must be one of normal, master, slave, replica, pubsub, not {_type!r}")
            args += [b"TYPE", _type]
        if skipme is not None:
            if not isinstance(skipme, bool):
                raise DataError("CLIENT KILL skipme must be a bool")
            args += [b"SKIPME", b"yes" if skipme else b"no"]
        for word, value in ((b"ID", _id), (b"ADDR", addr), (b"LADDR", laddr), (b"USER", user), (b"MAXAGE", maxage)):
            if value is not None:
                args += [word, value]
        if not args:
            raise DataError("CLIENT KILL <filter> <value> ... ... <filter> <value> must specify at least one filter")
        return self._call((b"CLIENT", b"KILL", *args))

    def client_pause(self, timeout: int, all: bool = True) -> Any:
        if not isinstance(timeout, int):
            raise DataError("CLIENT PAUSE timeout must be an integer")
        return self._call((b"CLIENT", b"PAUSE", timeout, *(() if all else (b"WRITE",))), ok)

    def client_unpause(self) -> Any:
        return self._call((b"CLIENT", b"UNPAUSE"))

    def client_no_evict(self, mode: str) -> Any:
        return self._call((b"CLIENT", b"NO-EVICT", mode))

    def client_no_touch(self, mode: str) -> Any:
        return self._call((b"CLIENT", b"NO-TOUCH", mode))

    def client_unblock(self, client_id: int, error: bool = False) -> Any:
        return self._call((b"CLIENT", b"UNBLOCK", client_id, *((b"ERROR",) if error else ())), bool)

    def client_getredir(self) -> Any:
        return self._call((b"CLIENT", b"GETREDIR"))

    def client_trackinginfo(self) -> Any:
        return self._call((b"CLIENT", b"TRACKINGINFO"))

    def client_setinfo(self, attr: str, value: str) -> Any:
        return self._call((b"CLIENT", b"SETINFO", attr, value), ok)

    # -- ACL -----------------------------------------------------------------

    def acl_cat(self, category: str | None = None) -> Any:
        return self._call((b"ACL", b"CAT", *(() if category is None else (category,))), _texts)

    def acl_dryrun(self, username: str, *args: Any) -> Any:
        return self._call((b"ACL", b"DRYRUN", username, *args))

    def acl_deluser(self, *username: str) -> Any:
        return self._call((b"ACL", b"DELUSER", *username))

    def acl_genpass(self, bits: int | None = None) -> Any:
        pieces: tuple[Any, ...] = ()
        if bits is not None:
            try:
                b = int(bits)
            except (TypeError, ValueError):
                raise DataError("genpass optionally accepts a bits argument, between 0 and 4096.") from None
            if b < 0 or b > 4096:
                raise DataError("genpass optionally accepts a bits argument, between 0 and 4096.")
            pieces = (b,)
        return self._call((b"ACL", b"GENPASS", *pieces), text)

    def acl_getuser(self, username: str) -> Any:
        return self._call((b"ACL", b"GETUSER", username), _acl_getuser)

    def acl_help(self) -> Any:
        return self._call((b"ACL", b"HELP"), _texts)

    def acl_list(self) -> Any:
        return self._call((b"ACL", b"LIST"), _texts)

    def acl_log(self, count: int | None = None) -> Any:
        if count is not None and not isinstance(count, int):
            raise DataError("ACL LOG count must be an integer")
        return self._call((b"ACL", b"LOG", *(() if count is None else (count,))), _acl_log)

    def acl_log_reset(self) -> Any:
        return self._call((b"ACL", b"LOG", b"RESET"), ok)

    def acl_load(self) -> Any:
        return self._call((b"ACL", b"LOAD"), ok)

    def acl_save(self) -> Any:
        return self._call((b"ACL", b"SAVE"), ok)

    def acl_users(self) -> Any:
        return self._call((b"ACL", b"USERS"), _texts)

    def acl_whoami(self) -> Any:
        return self._call((b"ACL", b"WHOAMI"), text)

    def acl_setuser(
        self,
        username: str,
        enabled: bool = False,
        nopass: bool = False,
        passwords: str | Iterable[str] | None = None,
        hashed_passwords: str | Iterable[str] | None = None,
        categories: Iterable[str] | None = None,
        commands: Iterable[str] | None = None,
        keys: Iterable[Key] | None = None,
        channels: Iterable[Key] | None = None,
        selectors: Iterable[tuple[str, Key]] | None = None,
        reset: bool = False,
        reset_keys: bool = False,
        reset_channels: bool = False,
        reset_passwords: bool = False,
    ) -> Any:
        """Create or change a user (redis-py's argument spelling: passwords
        and categories prefixed with ``+`` to add, ``-`` to remove)."""
        pieces: list[Any] = [username]
        for word, on in ((b"reset", reset), (b"resetkeys", reset_keys),
                         (b"resetchannels", reset_channels), (b"resetpass", reset_passwords)):
            if on:
                pieces.append(word)
        pieces.append(b"on" if enabled else b"off")
        if (passwords or hashed_passwords) and nopass:
            raise DataError("Cannot set 'nopass' and supply 'passwords' or 'hashed_passwords'")
        for values, add, remove, what in ((passwords, b">", b"<", "Password"),
                                          (hashed_passwords, b"#", b"!", "Hashed password")):
            for i, p in enumerate(_prefixed(values or (), what, allow_bare=True)):
                if p.startswith(b"+"):
                    pieces.append(add + p[1:])
                elif p.startswith(b"-"):
                    pieces.append(remove + p[1:])
                else:
                    raise DataError(f'{what} {i} must be prefixed with a "+" to add or a "-" to remove')
        if nopass:
            pieces.append(b"nopass")
        for c in _prefixed(categories or (), "Category"):
            pieces.append(c if c[1:2] == b"@" else c[:1] + b"@" + c[1:])
        pieces += _prefixed(commands or (), "Command")
        for k in keys or ():
            kb = k.encode() if isinstance(k, str) else bytes(k)
            pieces.append(kb if kb.startswith((b"%", b"~")) else b"~" + kb)
        for ch in channels or ():
            pieces.append(b"&" + (ch.encode() if isinstance(ch, str) else bytes(ch)))
        for cmd, key in selectors or ():
            (cb,) = _prefixed([cmd], "Command")
            kb = key.encode() if isinstance(key, str) else bytes(key)
            kb = kb if kb.startswith((b"%", b"~")) else b"~" + kb
            pieces.append(b"(" + cb + b" " + kb + b")")
        return self._call((b"ACL", b"SETUSER", *pieces), ok)

    # -- SLOWLOG, MEMORY, OBJECT, LATENCY, COMMAND -----------------------------

    def slowlog_get(self, num: int | None = None) -> Any:
        return self._call((b"SLOWLOG", b"GET", *(() if num is None else (num,))), _slowlog)

    def slowlog_len(self) -> Any:
        return self._call((b"SLOWLOG", b"LEN"))

    def slowlog_reset(self) -> Any:
        return self._call((b"SLOWLOG", b"RESET"), ok)

    def memory_usage(self, key: Key, samples: int | None = None) -> Any:
        return self._call((b"MEMORY", b"USAGE", key, *(() if samples is None else (b"SAMPLES", samples))))

    def memory_stats(self) -> Any:
        return self._call((b"MEMORY", b"STATS"), _memory_stats)

    def memory_doctor(self) -> Any:
        raise _not_implemented("MEMORY DOCTOR")

    def memory_malloc_stats(self) -> Any:
        return self._call((b"MEMORY", b"MALLOC-STATS"))

    def memory_help(self) -> Any:
        raise _not_implemented("MEMORY HELP")

    def memory_purge(self) -> Any:
        return self._call((b"MEMORY", b"PURGE"), ok)

    def object(self, infotype: str, key: Key) -> Any:
        """OBJECT ENCODING (a str), REFCOUNT, IDLETIME or FREQ (ints)."""
        return self._call((b"OBJECT", infotype, key))

    def latency_doctor(self) -> Any:
        raise _not_implemented("LATENCY DOCTOR")

    def latency_graph(self) -> Any:
        raise _not_implemented("LATENCY GRAPH")

    def latency_histogram(self, *args: str) -> Any:
        raise _not_implemented("LATENCY HISTOGRAM")

    def latency_history(self, event: str) -> Any:
        return self._call((b"LATENCY", b"HISTORY", event))

    def latency_latest(self) -> Any:
        return self._call((b"LATENCY", b"LATEST"))

    def latency_reset(self, *events: str) -> Any:
        return self._call((b"LATENCY", b"RESET", *events))

    def command_count(self) -> Any:
        return self._call((b"COMMAND", b"COUNT"))

    def command_list(self, module: str | None = None, category: str | None = None, pattern: str | None = None) -> Any:
        pieces: list[Any] = []
        for word, value in ((b"MODULE", module), (b"ACLCAT", category), (b"PATTERN", pattern)):
            if value is not None:
                pieces += [b"FILTERBY", word, value]
        return self._call((b"COMMAND", b"LIST", *pieces))

    def command(self) -> Any:
        return self._call((b"COMMAND",), _command_info)

    def command_getkeys(self, *args: Any) -> Any:
        return self._call((b"COMMAND", b"GETKEYS", *args), _texts)

    def command_getkeysandflags(self, *args: Any) -> Any:
        return self._call((b"COMMAND", b"GETKEYSANDFLAGS", *args), _keys_and_flags)

    def command_docs(self, *args: Any) -> Any:
        raise _not_implemented("COMMAND DOCS")

    # -- CONFIG, persistence, misc ---------------------------------------------

    def config_resetstat(self) -> Any:
        return self._call((b"CONFIG", b"RESETSTAT"), ok)

    def config_rewrite(self) -> Any:
        return self._call((b"CONFIG", b"REWRITE"), ok)

    def lastsave(self) -> Any:
        """When the last save succeeded, as a ``datetime``."""
        return self._call((b"LASTSAVE",), lambda r: datetime.datetime.fromtimestamp(int(r)))

    def save(self) -> Any:
        return self._call((b"SAVE",), ok)

    def bgsave(self, schedule: bool = True) -> Any:
        return self._call((b"BGSAVE", *((b"SCHEDULE",) if schedule else ())), lambda r: True)

    def bgrewriteaof(self) -> Any:
        return self._call((b"BGREWRITEAOF",), lambda r: True)

    def module_list(self) -> Any:
        """The loaded modules, a list of dicts."""
        return self._call((b"MODULE", b"LIST"), lambda r: [to_dict(m) for m in r])

    def module_load(self, path: str, *args: Any) -> Any:
        return self._call((b"MODULE", b"LOAD", path, *args), ok)

    def module_unload(self, name: str) -> Any:
        return self._call((b"MODULE", b"UNLOAD", name), ok)

    def script_debug(self, *args: Any) -> Any:
        raise NotImplementedError("SCRIPT DEBUG is intentionally not implemented in the client.")

    def role(self) -> Any:
        return self._call((b"ROLE",))

    def lolwut(self, *version_numbers: int) -> Any:
        args = (b"VERSION", *version_numbers) if version_numbers else ()
        return self._call((b"LOLWUT", *args))

    def debug_object(self, key: Key) -> Any:
        def post(reply: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for item in text(reply).split(" ")[1:]:
                k, _, v = item.partition(":")
                try:
                    out[k] = int(v)
                except ValueError:
                    out[k] = v
            return out

        return self._call((b"DEBUG", b"OBJECT", key), post)
