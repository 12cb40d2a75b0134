"""Another process's iokernel, seen from outside: where its metrics file and
admin endpoint are, and a small HTTP/1.1 client that asks the endpoint.

Used by the command line tools (``_cli``) and by ``top`` (``_top``); kept
apart from both so that neither imports the other.

Finding a process's files: its metrics file is found through
``/proc/PID/maps`` (the mapping names it, wherever it is), then in the
directory named by the target's own environment (``IOKERNEL_METRICS_DIR``,
``XDG_RUNTIME_DIR``), then in ours. The admin socket is ``<pid>.sock`` next to
the metrics file unless the target's ``IOKERNEL_ADMIN`` names another address;
a serving process also records its address in ``<pid>.admin`` there (mode
0600). That file is trusted only if it is owned by the target's user and not
group/world-writable, since it says where to connect (even ``tcp:host:port``).
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

__all__ = [
    "AdminError",
    "CLIError",
    "admin_addresses",
    "admin_get",
    "find_metrics_file",
    "http_get",
    "metrics_dir",
    "parse_address",
    "proc_environ",
    "process_state",
    "read_address_file",
]


class CLIError(Exception):
    """A failure to report to the user as one clear message (exit status 1)."""


class AdminError(CLIError):
    """The admin endpoint could not be reached or did not answer."""


# ---------------------------------------------------------------- locations
def metrics_dir(env: Mapping[str, str] | None = None) -> Path:
    """The directory iokernel puts metrics files and admin sockets in, for a
    process with environment ``env`` (ours by default). Mirrors
    ``src/metrics/mod.rs`` ``dir()``."""
    e = os.environ if env is None else env
    d = e.get("IOKERNEL_METRICS_DIR")
    if d:
        return Path(d)
    x = e.get("XDG_RUNTIME_DIR")
    if x:
        return Path(x) / "iokernel"
    return Path(f"/tmp/iokernel-{os.getuid()}")


def proc_environ(pid: int) -> dict[str, str] | None:
    """The environment ``pid`` started with, if we may read it."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def _mapped_metrics_file(pid: int) -> Path | None:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text(errors="replace")
    except OSError:
        return None
    suffix = f"/{pid}.metrics"
    for line in maps.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].endswith(suffix):
            return Path(parts[5])
    return None


def _candidate_dirs(pid: int) -> list[Path]:
    dirs: list[Path] = []
    mapped = _mapped_metrics_file(pid)
    if mapped is not None:
        dirs.append(mapped.parent)
    env = proc_environ(pid)
    if env is not None:
        dirs.append(metrics_dir(env))
    dirs.append(metrics_dir())
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def find_metrics_file(pid: int) -> Path:
    """``pid``'s metrics file, or CLIError naming the places looked at."""
    tried = [d / f"{pid}.metrics" for d in _candidate_dirs(pid)]
    for p in tried:
        if p.is_file():
            return p
    alive = process_state(pid)
    why = (
        "the process is not running (a process that exits cleanly removes its file)"
        if alive is None
        else "the process has not used iokernel metrics yet, or keeps them in memory only"
        " (it could not create its file; see iokernel._native.metrics_file_error())"
    )
    raise CLIError(
        f"no metrics file for pid {pid}: looked for {', '.join(map(str, tried))}; {why}. "
        "If the process uses another IOKERNEL_METRICS_DIR, pass --file."
    )


def process_state(pid: int) -> str | None:
    """A word for pid's state ('running', 'sleeping', 'stopped', ...), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "running"
        return "running"
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return {
        "R": "running",
        "S": "sleeping",
        "D": "in I/O",
        "T": "stopped",
        "t": "traced",
        "Z": "zombie",
        "X": "dead",
        "I": "idle",
    }.get(state, state)


# ------------------------------------------------------------ admin client
def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """``unix:/path``, ``/path``, ``tcp:host:port``, ``host:port`` or
    ``http://host:port`` -> ("unix", path) or ("tcp", (host, port))."""
    a = address.strip()
    if a.startswith("unix:"):
        return "unix", a[5:]
    if a.startswith("/") or a.startswith("./"):
        return "unix", a
    if a.startswith("http://"):
        a = a[7:].rstrip("/")
    elif a.startswith("tcp:"):
        a = a[4:]
    host, sep, port = a.rpartition(":")
    if not sep or not port.isdigit():
        raise CLIError(
            f"bad admin address {address!r}: use unix:/path/to.sock or tcp:127.0.0.1:PORT"
        )
    host = host.strip("[]") or "127.0.0.1"
    return "tcp", (host, int(port))


def admin_addresses(pid: int) -> tuple[list[str], str | None]:
    """Where pid's admin endpoint may be, best guess first, and a note if
    the target's environment turned it off."""
    env = proc_environ(pid) or {}
    configured = env.get("IOKERNEL_ADMIN", "").strip()
    if configured.lower() in ("off", "0", "no", "false", "none"):
        note = f"IOKERNEL_ADMIN={configured} in its environment turned the automatic start off"
        out = []
    else:
        note = None
        out = [configured] if configured else []
    for d in _candidate_dirs(pid):  # written by the process while it serves
        recorded = read_address_file(d / f"{pid}.admin", pid)
        if recorded:
            out.append(recorded)
    out += [f"unix:{d / f'{pid}.sock'}" for d in _candidate_dirs(pid)]
    return list(dict.fromkeys(out)), note


def read_address_file(path: Path, pid: int) -> str | None:
    """The address recorded in ``path`` by ``pid``, None if there is none
    (or pid is gone). CLIError if the file could have been written by
    someone else: not a regular file, not owned by pid's user, or
    group/world-writable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        if os.path.islink(path):
            _refuse(path, "it is a symbolic link", "remove it")
        return None  # absent, or not ours to read: try the other candidates
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            return None  # the process is gone: nothing to connect to
        if not stat.S_ISREG(st.st_mode):
            _refuse(path, "it is not a regular file", "remove it")
        if st.st_uid != owner:
            _refuse(
                path,
                f"it is owned by uid {st.st_uid}, but pid {pid} runs as uid {owner}",
                f"remove it (pid {pid} writes its own when it starts serving)",
            )
        if st.st_mode & 0o022:
            _refuse(
                path,
                f"its mode {stat.S_IMODE(st.st_mode):04o} lets other users change it "
                "(iokernel writes it 0600)",
                "remove it, or `chmod 600` it if you trust what it says",
            )
        return f.read(4096).decode(errors="replace").strip()


def _refuse(path: Path, why: str, fix: str) -> NoReturn:
    raise CLIError(
        f"refusing the admin address file {path}: {why}. It names the address to "
        f"connect to, so one written by someone else could send this tool anywhere; "
        f"{fix}, or pass --address to say where the endpoint listens."
    )


def _connect(address: str, timeout: float) -> socket.socket:
    kind, target = parse_address(address)
    if kind == "unix":
        assert isinstance(target, str)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        assert isinstance(target, tuple)
        s = socket.socket(
            socket.AF_INET6 if ":" in target[0] else socket.AF_INET, socket.SOCK_STREAM
        )
    s.settimeout(timeout)
    try:
        s.connect(target)
    except BaseException:
        s.close()
        raise
    return s


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            raise AdminError("truncated chunked response")
        size = int(body[i:j].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out)
        out += body[j + 2 : j + 2 + size]
        i = j + 2 + size + 2


def http_get(address: str, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` from an admin endpoint; (status, headers, body).

    The whole exchange must finish within ``timeout`` seconds. Raises
    AdminError (no socket, refused, timed out, malformed) with a message
    that says what to do.
    """
    deadline = time.monotonic() + timeout
    try:
        s = _connect(address, timeout)
    except FileNotFoundError:
        raise AdminError(f"no admin socket at {address}") from None
    except ConnectionRefusedError:
        raise AdminError(
            f"nothing is listening at {address} (a stale socket of a process that died?)"
        ) from None
    except TimeoutError:
        raise AdminError(f"connecting to {address} timed out after {timeout:g}s") from None
    except OSError as e:
        raise AdminError(f"cannot connect to {address}: {e.strerror or e}") from None
    chunks: list[bytes] = []
    try:
        with s:
            req = f"GET {path} HTTP/1.1\r\nHost: iokernel\r\nConnection: close\r\n\r\n"
            s.sendall(req.encode())
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError()
                s.settimeout(left)
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
    except TimeoutError:
        raise AdminError(
            f"{address} did not answer GET {path} within {timeout:g}s"
        ) from None
    except OSError as e:
        raise AdminError(f"GET {path} from {address} failed: {e.strerror or e}") from None
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise AdminError(f"{address} sent an incomplete HTTP response to GET {path}")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise AdminError(f"{address} sent a malformed status line: {lines[0]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        if len(body) < n:
            raise AdminError(f"{address} closed before the end of the body of GET {path}")
        body = body[:n]
    return status, headers, body


def admin_get(pid: int | None, address: str | None, path: str, timeout: float) -> bytes:
    """GET ``path`` from pid's admin endpoint (or from ``address``); the body.

    Tries the candidate addresses in turn; CLIError says what was tried and
    how to turn the endpoint on.
    """
    if address:
        candidates, note = [address], None
    elif pid is not None:
        candidates, note = admin_addresses(pid)
    else:
        raise CLIError("give a PID or --address")
    errors: list[str] = []
    for a in candidates:
        try:
            status, _, body = http_get(a, path, timeout)
        except AdminError as e:
            errors.append(str(e))
            # Something answered the connect but not the request: that is the
            # endpoint, stuck; trying other candidates would only hide that.
            if "did not answer" in str(e):
                break
            continue
        if status != 200:
            text = body.decode(errors="replace").strip()
            raise AdminError(f"GET {path} from {a}: HTTP {status} {text[:300]}")
        return body
    state = process_state(pid) if pid is not None else "running"
    stuck = any("did not answer" in e for e in errors)
    if state in ("stopped", "traced"):
        how = (
            f"pid {pid} is {state} (SIGSTOP or a debugger): none of its threads, the kernel "
            f"thread included, can answer until it continues (kill -CONT {pid}). Its metrics "
            f"file can still be read: python -m iokernel metrics {pid}"
        )
    elif stuck:
        how = (
            "The endpoint accepted the connection but did not answer: the kernel thread itself "
            f"may be blocked. Try `python -m iokernel metrics {pid if pid is not None else 'PID'}`"
            " (reads the metrics file) or `py-spy dump --pid PID`, or a longer --timeout"
        )
    else:
        how = (
            "The admin endpoint starts with the process's first iokernel client unless "
            "IOKERNEL_ADMIN=off; set IOKERNEL_ADMIN=unix:/path or tcp:127.0.0.1:PORT to choose "
            "where, or call iokernel.admin.serve() in the process. Pass --address if it listens "
            "elsewhere."
        )
        if state is None:
            how = f"pid {pid} is not running. " + how
        if note:
            how = f"{note}. " + how
    raise AdminError("; ".join(errors) + ". " + how if errors else how)
