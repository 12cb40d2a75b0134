"""The admin address file ``<metrics dir>/<pid>.admin``: written 0600 whatever
the umask (replacing a stale, too-open one), and trusted by the CLI only if
it is a regular file owned by the target process's user and not
group/world-writable.

No server is needed: the serving child calls ``iokernel.admin.serve``
itself; the CLI tests plant files for a child that merely waits on stdin.
Every wait is on a pipe (a line, or EOF), never a sleep.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from iokernel import _cli

ROOT = Path(__file__).resolve().parents[2]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def _child(code: str, mdir: Path, *argv: str) -> subprocess.Popen[str]:
    """A Python child with ``mdir`` as its metrics dir; it waits for EOF on stdin."""
    env = {k: v for k, v in os.environ.items() if k != "IOKERNEL_ADMIN"}
    env.update(IOKERNEL_METRICS_DIR=str(mdir), PYTHONPATH=str(ROOT / "python"))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *argv],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )


def _end(p: subprocess.Popen[str]) -> None:
    if p.stdin:
        p.stdin.close()  # the child reads stdin to EOF, then exits
    try:
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


SERVE = """
    import os, sys
    os.umask(0)
    mdir, address = sys.argv[1], sys.argv[2]
    if sys.argv[3] == "stale":  # a leftover (or planted) file, world-writable
        os.makedirs(mdir, exist_ok=True)
        path = os.path.join(mdir, f"{os.getpid()}.admin")
        with open(path, "w") as f:
            f.write("tcp:127.0.0.1:1\\n")
        os.chmod(path, 0o666)
    import iokernel.admin
    print(iokernel.admin.serve(address or None), flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("before", ["none", "stale"])
@pytest.mark.parametrize("address", ["tcp:127.0.0.1:0", ""])
def test_address_file_is_0600_under_umask_0(tmp_path: Path, address: str, before: str) -> None:
    mdir = tmp_path / "m"
    p = _child(SERVE, mdir, str(mdir), address, before)
    try:
        assert p.stdout is not None
        bound = p.stdout.readline().strip()  # serve() has returned: the file is written
        assert bound.startswith("tcp:127.0.0.1:" if address else "unix:"), bound
        f = mdir / f"{p.pid}.admin"
        st = f.lstat()
        assert stat.S_ISREG(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
        assert f.read_text().strip() == bound
        assert list(mdir.glob("*.tmp")) == []
        # ...and the CLI takes it.
        assert _cli.admin_addresses(p.pid)[0][0] == bound
    finally:
        _end(p)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A process (running as us) whose metrics dir is ``tmp_path/m``, and the
    path of its address file there."""
    mdir = tmp_path / "m"
    mdir.mkdir(mode=0o700)
    p = _child("import sys; print('up', flush=True); sys.stdin.read()", mdir)
    assert p.stdout is not None and p.stdout.readline().strip() == "up"
    try:
        yield p.pid, mdir / f"{p.pid}.admin"
    finally:
        _end(p)


def _plant(path: Path, mode: int, uid: int | None = None) -> None:
    path.write_text("tcp:127.0.0.1:1\n")
    os.chmod(path, mode)
    if uid is not None:
        os.chown(path, uid, -1)


def _refusal(pid: int, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `python -m iokernel status PID`: it must exit 1; its message."""
    with pytest.raises(SystemExit) as ei:
        _cli.main(["status", str(pid), "--timeout", "1"])
    assert ei.value.code == 1
    return capsys.readouterr().err


def test_cli_uses_a_file_of_the_targets_user(target: tuple[int, Path]) -> None:
    pid, path = target
    _plant(path, 0o600)
    assert _cli.admin_addresses(pid)[0][0] == "tcp:127.0.0.1:1"


@needs_root
def test_cli_refuses_a_file_of_another_user(
    target: tuple[int, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pid, path = target
    _plant(path, 0o600, uid=65534)
    with pytest.raises(_cli.CLIError, match=r"owned by uid 65534, but pid \d+ runs as uid 0"):
        _cli.admin_addresses(pid)
    err = _refusal(pid, capsys)
    assert "refusing the admin address file" in err and str(path) in err, err
    assert "--address" in err, err  # says what to do


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_cli_refuses_a_group_or_world_writable_file(
    target: tuple[int, Path], mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    pid, path = target
    _plant(path, mode)
    with pytest.raises(_cli.CLIError, match=f"mode {mode:04o} lets other users change it"):
        _cli.admin_addresses(pid)
    err = _refusal(pid, capsys)
    assert "chmod 600" in err and "--address" in err, err


def test_cli_refuses_a_symlink(target: tuple[int, Path], tmp_path: Path) -> None:
    pid, path = target
    real = tmp_path / "elsewhere"
    _plant(real, 0o600)
    path.symlink_to(real)
    with pytest.raises(_cli.CLIError, match="symbolic link"):
        _cli.admin_addresses(pid)
