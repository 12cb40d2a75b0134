"""DnsServer: a real dnsmasq on 127.0.0.1:<free port> answering from a hosts
file the test rewrites (`set_hosts`, which reloads it with SIGHUP and waits
until dnsmasq has read it), with TTL 1 s for those names (--local-ttl=1),
fixed records with their own TTL (`host_records`, e.g. TTL 5 s), SRV
records (`srv_records`), no upstream, and every query logged to a file
(`queries()` parses it).
"""

from __future__ import annotations

import os
import pwd
import random
import re
import signal
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.servers.process import LOOPBACK, ServerError, ServerProcess, find_binary

_QUERY = re.compile(r"query\[(\w+)\] (\S+) from")


def dns_query(host: str, port: int, name: str, qtype: int = 1, timeout: float = 1.0) -> bytes:
    """One DNS query over UDP; the raw answer (for a liveness check)."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (host, port))
        data, _ = s.recvfrom(4096)
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        raise ValueError("not an answer to our query")
    return data


class DnsServer(ServerProcess):
    """dnsmasq on a loopback UDP/TCP port, serving `hosts` (name -> addresses)."""

    kind = "dnsmasq"

    def __init__(
        self,
        *,
        hosts: Mapping[str, Sequence[str]] | None = None,
        host_records: Sequence[tuple[str, str, int]] = (),
        srv_records: Sequence[tuple[str, str, int, int, int]] = (),
        host: str = LOOPBACK,
        port: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.binary = find_binary("dnsmasq", ["/usr/sbin"])
        self.hosts_path = self.dir / "hosts"
        self.query_log = self.dir / "queries.log"
        self.host_records = list(host_records)  # (name, ip, ttl)
        self.srv_records = list(srv_records)  # (service name, target, port, priority, weight)
        self._write_hosts(hosts or {})

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _write_hosts(self, hosts: Mapping[str, Sequence[str]]) -> None:
        lines = [f"{ip} {name}" for name, ips in hosts.items() for ip in ips]
        tmp = self.hosts_path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.hosts_path)

    def command(self) -> list[str]:
        argv = [
            self.binary,
            "--keep-in-foreground",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            f"--addn-hosts={self.hosts_path}",
            "--local-ttl=1",
            "--neg-ttl=1",
            f"--listen-address={self.host}",
            "--bind-interfaces",
            f"--port={self.port}",
            "--pid-file=",
            f"--user={pwd.getpwuid(os.getuid()).pw_name}",
            "--log-queries",
            f"--log-facility={self.query_log}",
            "--cache-size=0",
        ]
        for name, ip, ttl in self.host_records:
            argv.append(f"--host-record={name},{ip},{ttl}")
        for name, target, port, prio, weight in self.srv_records:
            argv.append(f"--srv-host={name},{target},{port},{prio},{weight}")
        return argv

    def ping(self) -> bool:
        dns_query(self.host, self.port, "ping.invalid", timeout=0.5)
        return True

    def _reads(self) -> int:
        try:
            text = self.query_log.read_text(errors="replace")
        except OSError:
            return 0
        return text.count(f"read {self.hosts_path}")

    def set_hosts(self, hosts: Mapping[str, Sequence[str]], timeout: float = 10.0) -> None:
        """Rewrite the hosts file and reload it (SIGHUP); returns once dnsmasq
        has logged reading it."""
        before = self._reads()
        self._write_hosts(hosts)
        if self.proc is None:
            raise ServerError("dnsmasq is not running")
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self._reads() <= before:
            if time.monotonic() > deadline:
                raise ServerError(f"dnsmasq did not reload {self.hosts_path}: {self.log_tail()}")
            time.sleep(0.01)

    def queries(self, name: str | None = None) -> list[tuple[float, str, str]]:
        """(time read, type, name) of every logged query (of `name` if given).
        dnsmasq's log has 1 s timestamps; callers compare counts over time."""
        try:
            lines = self.query_log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        out = []
        now = time.time()
        for line in lines:
            m = _QUERY.search(line)
            if m and (name is None or m.group(2).rstrip(".") == name):
                out.append((now, m.group(1), m.group(2).rstrip(".")))
        return out

    def query_count(self, name: str, qtype: str = "A") -> int:
        return sum(1 for _, t, n in self.queries(name) if t == qtype)


def hosts_file(path: Path, hosts: Mapping[str, Sequence[str]]) -> None:
    path.write_text("".join(f"{ip} {n}\n" for n, ips in hosts.items() for ip in ips))
