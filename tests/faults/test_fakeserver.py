"""Self-test of the scripted fake Redis, with plain sockets (no iokernel)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.fakeserver import (
    MAX_BULK,
    Close,
    ConnScript,
    CutAndClose,
    Delay,
    FakeRedis,
    FrameError,
    Garbage,
    HalfClose,
    Reply,
    Reset,
    Stall,
    encode_command,
    parse_command,
)
from tests.servers import RespError, RespReader


class RawClient:
    def __init__(self, srv: FakeRedis, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(srv.address, timeout=timeout)
        self.reader = RespReader(self.sock)

    def send(self, *args: Any) -> None:
        self.sock.sendall(encode_command(*args))

    def reply(self) -> Any:
        return self.reader.reply()

    def cmd(self, *args: Any) -> Any:
        self.send(*args)
        return self.reply()

    def recv_all(self, limit: float = 2.0) -> bytes:
        """Read until EOF (bounded)."""
        self.sock.settimeout(limit)
        out = bytes(self.reader.buf)
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return out
            out += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def srv(no_leaks: Any) -> Iterator[FakeRedis]:
    with FakeRedis() as s:
        yield s


@pytest.fixture
def connect(srv: FakeRedis) -> Iterator[Any]:
    clients: list[RawClient] = []

    def _connect(timeout: float = 2.0) -> RawClient:
        c = RawClient(srv, timeout)
        clients.append(c)
        return c

    yield _connect
    for c in clients:
        c.close()


# ------------------------------------------------------------- the parser
def test_parse_command_incremental() -> None:
    frame = encode_command("SET", "key", b"va\r\nlue")
    for cut in range(len(frame)):
        assert parse_command(frame[:cut]) is None
    assert parse_command(frame + b"*1\r\n") == ([b"SET", b"key", b"va\r\nlue"], len(frame))
    assert parse_command(b"PING hello\r\n") == ([b"PING", b"hello"], 12)
    assert parse_command(b"*0\r\n") == ([], 4)


@pytest.mark.parametrize(
    "bad",
    [b"*x\r\n", b"*1\r\n:5\r\n", b"*1\r\n$abc\r\n", b"*1\r\n$3\r\nabcd\r\n",
     b"*1\r\n$%d\r\n" % (MAX_BULK + 1), b"*-5\r\n"],
)
def test_parse_command_rejects(bad: bytes) -> None:
    with pytest.raises(FrameError):
        parse_command(bad)


# ---------------------------------------------------------- normal mode
def test_normal_behaviour_resp2_and_resp3(srv: FakeRedis, connect: Any) -> None:
    c = connect()
    assert c.cmd("PING") == b"PONG"
    assert c.cmd("SET", "k", b"\x00v") == b"OK"
    assert c.cmd("GET", "k") == b"\x00v"
    assert c.cmd("GET", "missing") is None
    hello = c.cmd("HELLO", "3")
    assert isinstance(hello, dict) and hello[b"proto"] == 3 and hello[b"server"] == b"redis"
    c.send("GET", "missing")
    assert c.reader.line() == b"_"  # RESP3 null
    assert c.cmd("INCRBY", "n", "5") == 5
    assert isinstance(c.cmd("NOSUCH"), RespError)
    hello2 = connect().cmd("HELLO", "2")
    assert isinstance(hello2, list) and b"proto" in hello2
    assert srv.commands_named("GET") == [[b"GET", b"k"], [b"GET", b"missing"], [b"GET", b"missing"]]


def test_pipelined_commands_answered_in_order(connect: Any) -> None:
    c = connect()
    n = 200
    c.sock.sendall(b"".join(encode_command("SET", f"k{i}", f"v{i}") for i in range(n)))
    c.sock.sendall(b"".join(encode_command("GET", f"k{i}") for i in range(n)))
    assert [c.reply() for _ in range(n)] == [b"OK"] * n
    assert [c.reply() for _ in range(n)] == [f"v{i}".encode() for i in range(n)]


# -------------------------------------------------------------- scripts
def test_nth_command_after_handshake_misbehaves(srv: FakeRedis, connect: Any) -> None:
    srv.script(ConnScript.nth(2, Garbage(b"!!!\r\n")))
    c = connect()
    assert isinstance(c.cmd("HELLO", "3"), dict)  # not counted
    assert c.cmd("SET", "a", "1") == b"OK"  # 1st
    c.send("GET", "a")  # 2nd
    assert c.reader.line() == b"!!!"
    assert c.cmd("GET", "a") == b"1"  # 3rd: normal again
    assert connect().cmd("GET", "a") == b"1"  # next connection: default script


def test_only_counts_named_commands(srv: FakeRedis, connect: Any) -> None:
    srv.script(ConnScript.always(Reply(b"+fixed\r\n"), only={"GET"}))
    c = connect()
    assert c.cmd("PING") == b"PONG"
    assert c.cmd("GET", "x") == b"fixed"
    assert c.cmd("SET", "x", "1") == b"OK"
    assert c.cmd("GET", "x") == b"fixed"


def test_callable_action(srv: FakeRedis, connect: Any) -> None:
    srv.script(ConnScript.always(lambda argv: Reply(b"+%s\r\n" % argv[-1].upper())))
    assert connect().cmd("ECHO", "abc") == b"ABC"


def test_cut_and_close(srv: FakeRedis, connect: Any) -> None:
    srv.script(ConnScript.nth(2, CutAndClose()))
    c = connect()
    assert c.cmd("SET", "k", b"x" * 100) == b"OK"
    c.send("GET", "k")
    data = c.recv_all()
    assert data.startswith(b"$100\r\nxxx") and len(data) < 100
    srv.wait_for(lambda: srv.live_connections == 0, what="connection closed")


def test_stall_then_heal_answers_in_order(srv: FakeRedis, connect: Any) -> None:
    srv.script(ConnScript.nth(1, Stall()))
    c = connect(timeout=0.3)
    c.send("SET", "a", "1")
    with pytest.raises(socket.timeout):
        c.reply()
    c.send("GET", "a")
    srv.wait_for(lambda: len(srv.commands_named("GET")) == 1, what="GET received")
    srv.heal()
    c.sock.settimeout(2)
    assert c.reply() == b"OK"
    assert c.reply() == b"1"
    assert c.cmd("PING") == b"PONG"


def test_delay_holds_back_later_replies(srv: FakeRedis, connect: Any) -> None:
    srv.script(ConnScript.nth(1, Delay(0.3)))
    c = connect()
    t0 = time.monotonic()
    c.send("SET", "a", "1")
    c.send("GET", "a")
    assert c.reply() == b"OK"
    assert c.reply() == b"1"
    assert 0.25 < time.monotonic() - t0 < 2.0


def test_half_close(srv: FakeRedis, connect: Any) -> None:
    srv.script(ConnScript.nth(1, HalfClose(b"+partial")))
    c = connect()
    c.send("PING")
    assert c.recv_all() == b"+partial"
    # our side can still write: the server keeps reading
    c.send("PING")
    srv.wait_for(lambda: len(srv.commands_named("PING")) == 2, what="2nd PING read")
    assert srv.live_connections == 1


@pytest.mark.parametrize("action", [Close(), Reset()])
def test_close_on_accept(srv: FakeRedis, connect: Any, action: Any) -> None:
    srv.script(ConnScript(on_accept=action))
    try:
        c = connect()  # with a timeout, connect() itself may see the RST
        c.send("PING")
        data = c.recv_all()
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    assert data == b""
    srv.wait_for(lambda: srv.accepted == 1 and srv.live_connections == 0)
    assert connect().cmd("PING") == b"PONG"


def test_garbage_on_accept(srv: FakeRedis, connect: Any) -> None:
    srv.script(ConnScript(on_accept=Garbage(b"\xff\xfe\r\n")))
    c = connect()
    assert c.reader.line() == b"\xff\xfe"


def test_close_all_and_set_default(srv: FakeRedis, connect: Any) -> None:
    a, b = connect(), connect()
    assert a.cmd("PING") == b"PONG" and b.cmd("PING") == b"PONG"
    srv.close_all()
    assert a.recv_all() == b"" and b.recv_all() == b""
    srv.set_default(ConnScript.always(Reply(b"-ERR down\r\n")))
    assert isinstance(connect().cmd("PING"), RespError)
    srv.heal()
    assert connect().cmd("PING") == b"PONG"


def test_frame_error_closes_connection(srv: FakeRedis, connect: Any) -> None:
    c = connect()
    c.sock.sendall(b"*1\r\n$-7\r\n")
    assert c.recv_all() == b""
    assert srv.frame_errors


def test_stop_is_bounded_with_live_connections(no_leaks: Any) -> None:
    srv = FakeRedis().start()
    socks = [socket.create_connection(srv.address, timeout=2) for _ in range(5)]
    srv.wait_for(lambda: srv.live_connections == 5)
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 2.0
    for s in socks:
        s.close()
