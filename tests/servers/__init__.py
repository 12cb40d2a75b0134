"""Real servers (from Debian packages) started privately for tests, the demo and the bench.

Each server runs as a child process on a free loopback port with its own
temporary directory, and is stopped (SIGTERM, then SIGKILL) when done. Every wait
is bounded.

    with RedisServer() as srv:           # or srv = RedisServer(); srv.start()
        srv.url()                        # redis://127.0.0.1:PORT/0
        srv.unix_path                    # /tmp/iok-redis-XXXX/redis.sock
        resp_command(srv.host, srv.port, "FLUSHALL")
        srv.restart()                    # same port, same password (reconnect tests)
        with srv.frozen(): ...           # SIGSTOP/SIGCONT: a server that stops answering

    RedisServer(password="pw", acl_users={"alice": "alicepw"})   # auth tests

    with SentinelGroup() as g:           # primary + replica + 3 sentinels (sentinel_group.py)
        g.url()                          # redis+sentinel://127.0.0.1:P1,P2,P3/mymaster/0
        g.failover(); g.wait_master(g.replica)

    with PostgresServer() as pg:         # initdb'd once per process, copied per server
        pg.dsn()                         # postgresql://app:PW@127.0.0.1:PORT/app
        pg.dsn(user="md5user", application_name="x")   # md5 auth; plainuser: cleartext
        pg.sql("SELECT 1")               # via psql over the Unix socket (not iokernel)
        pg.terminate("x"); pg.kill(); pg.restart()

Command line (used by the Makefile for `make demo` / `make bench`):

    python -m tests.servers redis [--password PW] [--env NAME]... [--reuse-env] [-- CMD ...]
    python -m tests.servers postgres [--password PW] [--env NAME]... [--reuse-env] [-- CMD ...]

With a command: start the server, export its URL as IOKERNEL_REDIS_URL (postgres:
its DSN as IOKERNEL_PG_DSN) and as every --env NAME, run the command, stop the
server, exit with the command's status. The two nest:
`python -m tests.servers redis --env A -- python -m tests.servers postgres --env B -- CMD`.
With --reuse-env and the first --env variable already set, no server is started.
Without a command: print the URL, write --pidfile if asked, and serve until
SIGINT/SIGTERM.

Layout: process.py (ServerProcess, the generic child-process lifecycle, and
free_port/find_binary), resp.py (a raw RESP client of its own), redis_server.py,
postgres_server.py, __main__.py (the command line). Everything is re-exported
here, so `from tests.servers import RedisServer` is the import to use.

To add a server kind (nginx, memcached): subclass ServerProcess in a module of
its own, implement command() and ping(), and register it in SERVER_KINDS below.
"""

from tests.servers.postgres_server import (
    PG_DB,
    PG_MD5_PASSWORD,
    PG_MD5_USER,
    PG_OS_USER,
    PG_PASSWORD,
    PG_PLAIN_PASSWORD,
    PG_PLAIN_USER,
    PG_USER,
    PgError,
    PostgresServer,
    pg_bindir,
    pg_startup_ping,
)
from tests.servers.process import (
    LOOPBACK,
    ServerError,
    ServerProcess,
    dead_port,
    find_binary,
    free_port,
    free_port_on_all,
)
from tests.servers.redis_server import RedisServer
from tests.servers.resp import RespError, RespReader, encode_command, resp_command, resp_pipeline
from tests.servers.sentinel_group import SentinelGroup, SentinelServer

SERVER_KINDS: dict[str, type[ServerProcess]] = {"redis": RedisServer, "postgres": PostgresServer}

__all__ = [
    "LOOPBACK",
    "PG_DB",
    "PG_MD5_PASSWORD",
    "PG_MD5_USER",
    "PG_OS_USER",
    "PG_PASSWORD",
    "PG_PLAIN_PASSWORD",
    "PG_PLAIN_USER",
    "PG_USER",
    "SERVER_KINDS",
    "PgError",
    "PostgresServer",
    "RedisServer",
    "RespError",
    "RespReader",
    "SentinelGroup",
    "SentinelServer",
    "ServerError",
    "ServerProcess",
    "dead_port",
    "encode_command",
    "find_binary",
    "free_port",
    "free_port_on_all",
    "pg_bindir",
    "pg_startup_ping",
    "resp_command",
    "resp_pipeline",
]
