"""A scripted fake Redis server for fault tests (plain sockets, one background thread).

Real behaviour belongs to the real redis-server (tests/servers). This one
exists to misbehave on cue: garbage, replies cut mid-frame, stalls, half-closes,
closes on accept, late replies. Until told otherwise it behaves like a small
in-memory Redis (RESP2, or RESP3 after HELLO 3) so a client can connect, do its
handshake and work normally.

    from tests.faults.fakeserver import FakeRedis, ConnScript, Garbage, Stall

    with FakeRedis() as srv:                       # 127.0.0.1:<port 0>
        srv.url()                                  # redis://127.0.0.1:PORT/0
        srv.script(ConnScript.nth(2, Garbage()))   # next connection: 2nd command -> garbage
        srv.set_default(ConnScript(then=Stall()))  # every later connection stalls
        srv.close_all()                            # drop live connections (peer closes)
        srv.wait_for(lambda: srv.accepted >= 1, timeout=2)
        srv.commands                               # [(conn_id, [b"GET", b"k"]), ...]

Scripts apply per connection: the i-th accepted connection takes the i-th script
queued with script(), and the default (normal behaviour unless set) after that.
Within a connection, handshake commands (HELLO, AUTH, SELECT, CLIENT, READONLY)
are answered normally and not counted, unless ConnScript(handshake=False); with
ConnScript(only={"GET"}) only GETs are counted and scripted (robust against
heartbeat PINGs). Counted command #1 gets actions[0], #2 actions[1], ... and
then `then`. An action may also be a callable argv -> Action.

Replies leave each connection in order: a Delay holds back everything after it.
Everything is bounded: stop() joins the thread with a timeout, incoming frames
have size limits, the number of connections is capped.

The actions and ConnScript are in fake_script.py, the RESP parsing and reply
builders in fake_resp.py; both are re-exported here.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from tests.faults.fake_resp import (
    MAX_ARGS,
    MAX_BULK,
    MAX_INLINE,
    FrameError,
    bulk,
    encode_command,
    error,
    integer,
    parse_command,
    simple,
)
from tests.faults.fake_script import (
    Action,
    ActionLike,
    Close,
    ConnScript,
    CutAndClose,
    Delay,
    Garbage,
    HalfClose,
    Normal,
    Reply,
    Reset,
    Stall,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "HANDSHAKE_COMMANDS",
    "LOOPBACK",
    "MAX_ARGS",
    "MAX_BULK",
    "MAX_CONNECTIONS",
    "MAX_INLINE",
    "Action",
    "ActionLike",
    "Close",
    "ConnScript",
    "CutAndClose",
    "Delay",
    "FakeRedis",
    "FrameError",
    "Garbage",
    "HalfClose",
    "Normal",
    "Reply",
    "Reset",
    "Stall",
    "bulk",
    "encode_command",
    "error",
    "integer",
    "parse_command",
    "simple",
]

LOOPBACK = "127.0.0.1"
MAX_CONNECTIONS = 256
HANDSHAKE_COMMANDS = frozenset({"HELLO", "AUTH", "SELECT", "CLIENT", "READONLY"})


# ---------------------------------------------------------------- connection
_CLOSE, _HALF_CLOSE, _RESET = "close", "half-close", "reset"


class _Conn:
    def __init__(self, cid: int, sock: socket.socket, script: ConnScript) -> None:
        self.id = cid
        self.sock = sock
        self.script = script
        self.inbuf = bytearray()
        self.out: deque[tuple[float, bytes | str]] = deque()
        self.pending = b""  # head bytes partly sent
        self.counted = 0
        self.proto = 2
        self.stalled = False
        self.held: list[list[bytes]] = []  # commands received while stalled
        self.write_closed = False
        self.last_ready = 0.0

    def queue(self, item: bytes | str, ready_at: float = 0.0) -> None:
        # keep replies in order: nothing leaves before what was queued earlier
        self.last_ready = max(self.last_ready, ready_at)
        self.out.append((self.last_ready, item))


# -------------------------------------------------------------------- server
class FakeRedis:
    """Scripted fake Redis on 127.0.0.1 (port 0 by default), served by one thread."""

    def __init__(self, *, host: str = LOOPBACK, port: int = 0,
                 default: ConnScript | None = None,
                 scripts: Iterable[ConnScript] = (), version: str = "7.0.15") -> None:
        self.host = host
        self.version = version
        self._lock = threading.Lock()
        self._scripts: deque[ConnScript] = deque(scripts)
        self._default = default or ConnScript()
        self._calls: deque[Callable[[], None]] = deque()
        self.data: dict[bytes, bytes] = {}
        self.commands: list[tuple[int, list[bytes]]] = []
        self.accepted = 0
        self.closed_connections = 0
        self.frame_errors: list[str] = []
        self._conns: dict[int, _Conn] = {}
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._thread = threading.Thread(target=self._run, name=f"fakeredis:{self.port}",
                                        daemon=True)
        self._started = False

    # -- public API
    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def start(self) -> Self:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake()
        if self._started:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"fake redis thread did not stop within {timeout}s")
        else:
            self._close_everything()

    def script(self, *scripts: ConnScript) -> None:
        """Queue scripts for the next connections to be accepted, in order."""
        with self._lock:
            self._scripts.extend(scripts)

    def set_default(self, script: ConnScript | None = None) -> None:
        """Script for connections once the queue is used up (None: behave normally)."""
        with self._lock:
            self._default = script or ConnScript()

    def heal(self) -> None:
        """Behave normally from now on: empty the queue, reset the default; live
        stalled connections answer the commands they held back, then carry on."""
        with self._lock:
            self._scripts.clear()
            self._default = ConnScript()
        self._call(self._heal_live)

    def close_all(self, *, reset: bool = False, timeout: float = 5.0) -> None:
        """Close every live connection from the server side, and wait until done."""
        done = threading.Event()

        def _do() -> None:
            for conn in list(self._conns.values()):
                self._close(conn, reset=reset)
            done.set()

        self._call(_do)
        if not done.wait(timeout):
            raise RuntimeError("close_all did not complete")

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def commands_named(self, name: str) -> list[list[bytes]]:
        with self._lock:
            want = name.encode().upper()
            return [argv for _, argv in self.commands if argv and argv[0].upper() == want]

    def wait_for(self, cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"fake redis: timed out after {timeout}s waiting for {what or cond}"
                )
            time.sleep(0.01)

    # -- internals: everything below runs on the server thread unless noted
    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _call(self, fn: Callable[[], None]) -> None:  # any thread
        with self._lock:
            self._calls.append(fn)
        self._wake()

    def _heal_live(self) -> None:
        # A stalled connection answers what it held back, in order, like a
        # server that thaws; later commands are answered normally.
        for conn in self._conns.values():
            conn.script = ConnScript()
            conn.counted = 0
            conn.stalled = False
            held, conn.held = conn.held, []
            for argv in held:
                self._apply(conn, Normal(), argv)

    def _run(self) -> None:
        self._sel.register(self._listener, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                timeout = 0.5
                now = time.monotonic()
                for conn in self._conns.values():
                    if conn.out and not conn.pending:
                        timeout = min(timeout, max(0.0, conn.out[0][0] - now))
                for key, events in self._sel.select(timeout):
                    tag = key.data
                    if tag == "listen":
                        self._accept()
                    elif tag == "wake":
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        live = self._conns.get(tag)
                        if live is None:
                            continue
                        if events & selectors.EVENT_READ:
                            self._read(live)
                        if events & selectors.EVENT_WRITE and live.id in self._conns:
                            self._flush(live)
                while True:
                    with self._lock:
                        fn = self._calls.popleft() if self._calls else None
                    if fn is None:
                        break
                    fn()
                for conn in list(self._conns.values()):
                    self._flush(conn)
        finally:
            self._close_everything()

    def _close_everything(self) -> None:
        for conn in list(self._conns.values()):
            self._close(conn)
        for s in (self._listener, self._wake_r, self._wake_w):
            with contextlib.suppress(Exception):
                self._sel.unregister(s)
            s.close()
        self._sel.close()

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if len(self._conns) >= MAX_CONNECTIONS:
                    sock.close()
                    continue
                self.accepted += 1
                cid = self.accepted
                script = self._scripts.popleft() if self._scripts else self._default
                conn = _Conn(cid, sock, script)
                self._conns[cid] = conn
            self._sel.register(sock, selectors.EVENT_READ, cid)
            if script.on_accept is not None:
                self._apply(conn, script.on_accept, None)

    def _read(self, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not chunk:
            self._close(conn)
            return
        # Parse even while stalled (commands are recorded, not answered) so that
        # frame boundaries stay known if heal() makes the connection answer again.
        conn.inbuf += chunk
        pos = 0
        while conn.id in self._conns:
            try:
                got = parse_command(conn.inbuf, pos)
            except FrameError as e:
                with self._lock:
                    self.frame_errors.append(str(e))
                self._close(conn)
                return
            if got is None:
                break
            argv, pos = got
            if argv:
                self._command(conn, argv)
        if pos:
            del conn.inbuf[:pos]

    def _command(self, conn: _Conn, argv: list[bytes]) -> None:
        with self._lock:
            self.commands.append((conn.id, argv))
        name = argv[0].decode(errors="replace").upper()
        script = conn.script
        counted = True
        if script.handshake and name in HANDSHAKE_COMMANDS:
            counted = False
        if script.only is not None and name not in {n.upper() for n in script.only}:
            counted = False
        if conn.stalled:
            conn.held.append(argv)
            return
        if not counted:
            self._apply(conn, Normal(), argv)
            return
        conn.counted += 1
        i = conn.counted - 1
        action: ActionLike = script.actions[i] if i < len(script.actions) else script.then
        if not isinstance(action, Action):
            action = action(argv)
        self._apply(conn, action, argv)

    def _apply(self, conn: _Conn, action: Action, argv: list[bytes] | None,
               ready_at: float = 0.0) -> None:
        if isinstance(action, Normal):
            if argv is not None:
                reply = self._normal(conn, argv)
                conn.queue(reply, ready_at)
                if argv[0].upper() == b"QUIT":
                    conn.queue(_CLOSE, ready_at)
        elif isinstance(action, (Reply, Garbage)):
            conn.queue(action.data, ready_at)
        elif isinstance(action, CutAndClose):
            data = action.data
            if data is None:
                data = self._normal(conn, argv) if argv is not None else b"$10\r\nabc"
            keep = action.keep if action.keep is not None else max(1, len(data) // 2)
            keep = min(keep, max(0, len(data) - 1))
            conn.queue(data[:keep], ready_at)
            conn.queue(_CLOSE, ready_at)
        elif isinstance(action, Stall):
            conn.stalled = True
            if argv is not None:
                conn.held.append(argv)
        elif isinstance(action, Delay):
            self._apply(conn, action.then, argv, max(ready_at, time.monotonic() + action.seconds))
        elif isinstance(action, HalfClose):
            if action.data:
                conn.queue(action.data, ready_at)
            conn.queue(_HALF_CLOSE, ready_at)
            conn.stalled = True
        elif isinstance(action, Close):
            if action.data:
                conn.queue(action.data, ready_at)
            conn.queue(_CLOSE, ready_at)
        elif isinstance(action, Reset):
            conn.queue(_RESET, ready_at)
        else:
            raise TypeError(f"unknown action {action!r}")

    def _flush(self, conn: _Conn) -> None:
        now = time.monotonic()
        want_write = False
        while conn.id in self._conns:
            if conn.pending:
                try:
                    sent = conn.sock.send(conn.pending)
                except (BlockingIOError, InterruptedError):
                    want_write = True
                    break
                except OSError:
                    self._close(conn)
                    return
                conn.pending = conn.pending[sent:]
                if conn.pending:
                    want_write = True
                    break
                continue
            if not conn.out or conn.out[0][0] > now:
                break
            _, item = conn.out.popleft()
            if isinstance(item, bytes):
                if not conn.write_closed:
                    conn.pending = item
            elif item == _CLOSE:
                self._close(conn)
                return
            elif item == _RESET:
                self._close(conn, reset=True)
                return
            elif item == _HALF_CLOSE:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_WR)
                conn.write_closed = True
        if conn.id in self._conns:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.modify(conn.sock, events, conn.id)

    def _close(self, conn: _Conn, reset: bool = False) -> None:
        with self._lock:
            if self._conns.pop(conn.id, None) is None:
                return
            self.closed_connections += 1
        with contextlib.suppress(Exception):
            self._sel.unregister(conn.sock)
        if reset:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
        conn.sock.close()

    # -- a tiny Redis
    def _normal(self, conn: _Conn, argv: list[bytes]) -> bytes:
        name = argv[0].upper()
        args = argv[1:]
        p = conn.proto
        if name == b"PING":
            return bulk(args[0]) if args else simple("PONG")
        if name == b"ECHO" and len(args) == 1:
            return bulk(args[0])
        if name == b"HELLO":
            if args:
                try:
                    ver = int(args[0])
                except ValueError:
                    return error("ERR Protocol version is not an integer or out of range")
                if ver not in (2, 3):
                    return error("NOPROTO unsupported protocol version")
                conn.proto = p = ver
            fields: list[tuple[bytes, bytes]] = [
                (bulk(b"server"), bulk(b"redis")),
                (bulk(b"version"), bulk(self.version.encode())),
                (bulk(b"proto"), integer(p)),
                (bulk(b"id"), integer(conn.id)),
                (bulk(b"mode"), bulk(b"standalone")),
                (bulk(b"role"), bulk(b"master")),
                (bulk(b"modules"), b"*0\r\n"),
            ]
            head = b"%%%d\r\n" % len(fields) if p == 3 else b"*%d\r\n" % (2 * len(fields))
            return head + b"".join(k + v for k, v in fields)
        if name in (b"AUTH", b"SELECT", b"READONLY", b"QUIT"):
            return simple("OK")
        if name == b"CLIENT":
            sub = args[0].upper() if args else b""
            if sub == b"ID":
                return integer(conn.id)
            if sub == b"GETNAME":
                return bulk(None, p)
            return simple("OK")
        if name == b"SET" and len(args) >= 2:
            self.data[args[0]] = args[1]
            return simple("OK")
        if name == b"GET" and len(args) == 1:
            return bulk(self.data.get(args[0]), p)
        if name == b"MGET" and args:
            return b"*%d\r\n" % len(args) + b"".join(bulk(self.data.get(k), p) for k in args)
        if name in (b"DEL", b"UNLINK"):
            return integer(sum(1 for k in args if self.data.pop(k, None) is not None))
        if name == b"EXISTS":
            return integer(sum(1 for k in args if k in self.data))
        if name in (b"INCR", b"INCRBY") and args:
            try:
                by = int(args[1]) if name == b"INCRBY" and len(args) > 1 else 1
                v = int(self.data.get(args[0], b"0")) + by
            except ValueError:
                return error("ERR value is not an integer or out of range")
            self.data[args[0]] = str(v).encode()
            return integer(v)
        if name in (b"FLUSHALL", b"FLUSHDB"):
            self.data.clear()
            return simple("OK")
        if name == b"DBSIZE":
            return integer(len(self.data))
        return error(
            f"ERR unknown command '{argv[0].decode(errors='replace')}', with args beginning with: "
        )
