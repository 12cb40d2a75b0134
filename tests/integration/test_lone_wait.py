"""A lone blocking caller spins briefly for its reply before it sleeps
(src/kernel/lone_wait.rs), against a real redis-server: quick replies, a
slow one (which turns spinning off) and quick ones again (which turn it
back on) each reach their own caller, with the right value, whether the
caller was spinning or asleep when the reply came."""

from __future__ import annotations

from iokernel import redis as iok


def test_quick_and_slow_replies_reach_a_lone_caller(redis_url: str) -> None:
    c = iok.Client(redis_url, timeout=30.0)
    try:
        for i in range(200):  # quick: most come while the caller spins
            c.set(f"lone:{i}", f"v{i}")
            assert c.get(f"lone:{i}") == f"v{i}".encode()
        # A slow reply: BLPOP on an empty list gives up after 0.2 s.
        assert c.blpop(["lone:empty"], timeout=0.2) is None
        assert c.get("lone:7") == b"v7"  # the next call still gets its own
        c.rpush("lone:list", "a", "b")
        assert c.blpop(["lone:list"], timeout=1) == (b"lone:list", b"a")
        for i in range(200):  # quick again
            assert c.incr("lone:n") == i + 1
    finally:
        c.close()
