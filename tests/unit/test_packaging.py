"""Packaging checks: version, typing marker, and stubs that match the binary."""

from __future__ import annotations

import ast
import importlib
import importlib.resources
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG_SRC = ROOT / "python" / "iokernel"
STUB = PKG_SRC / "_native.pyi"


def _toml_version(path: Path, table: str) -> str:
    text = path.read_text()
    try:
        import tomllib  # 3.11+

        data = tomllib.loads(text)
        return str(data[table]["version"])
    except ModuleNotFoundError:  # 3.10: the first version = "..." in [table]
        section = text.split(f"[{table}]", 1)[1].split("\n[", 1)[0]
        m = re.search(r'^version\s*=\s*"([^"]+)"', section, re.MULTILINE)
        assert m, f"no version in [{table}] of {path}"
        return m.group(1)


def test_package_imports() -> None:
    import iokernel
    from iokernel import redis

    assert callable(redis.Client) and callable(redis.AsyncClient)
    for name in ("Error", "ConnectionError", "TimeoutError", "ProtocolError", "OverloadedError"):
        exc = getattr(iokernel, name)
        assert issubclass(exc, iokernel.Error), name
    assert issubclass(redis.ResponseError, iokernel.Error)
    for name in getattr(iokernel, "__all__", []):
        assert hasattr(iokernel, name), f"iokernel.__all__ names missing {name}"


def test_version_matches_pyproject_and_cargo() -> None:
    import iokernel

    py = _toml_version(ROOT / "pyproject.toml", "project")
    cargo = _toml_version(ROOT / "Cargo.toml", "package")
    assert iokernel.__version__ == py, (iokernel.__version__, py)
    assert cargo == py, f"Cargo.toml {cargo} != pyproject.toml {py}"
    from importlib.metadata import version

    assert version("iokernel") == py


def test_py_typed_is_shipped() -> None:
    files = importlib.resources.files("iokernel")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_native.pyi").is_file()


# ------------------------------------------------------------------- stubs
def _public(name: str) -> bool:
    return not name.startswith("_") or name == "__version__"


def _stub_names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            # explicit re-exports only: `from x import y as y`
            names.update(a.name for a in node.names if a.asname == a.name)
    return {n for n in names if _public(n)}


def _stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(), filename=str(STUB))


def _native() -> ModuleType:
    return importlib.import_module("iokernel._native")


def test_stub_lists_every_native_name_and_no_other() -> None:
    native = _native()
    in_binary = {n for n in dir(native) if _public(n)}
    in_stub = _stub_names(_stub_tree().body)
    assert in_binary - in_stub == set(), "exported by the binary but missing from _native.pyi"
    assert in_stub - in_binary == set(), "in _native.pyi but not exported by the binary"


def _classes() -> list[ast.ClassDef]:
    return [n for n in _stub_tree().body if isinstance(n, ast.ClassDef)]


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.name)
def test_stub_class_members_match_binary(cls: ast.ClassDef) -> None:
    obj = getattr(_native(), cls.name)
    in_binary = {n for n in dir(obj) if _public(n)}
    if isinstance(obj, type) and issubclass(obj, BaseException):
        in_binary -= set(dir(BaseException))
    in_stub = _stub_names(cls.body)
    assert in_binary - in_stub == set(), f"{cls.name}: members missing from the stub"
    assert in_stub - in_binary == set(), f"{cls.name}: stub members the binary lacks"


# ------------------------------------------------------------------- wheel
@pytest.mark.timeout(900)
def test_wheel_contents(tmp_path: Path) -> None:
    """The built wheel ships every module, the stub, py.typed and the extension.

    Under `make test` this reuses the release build of `make build` (same
    environment, so cargo has nothing to recompile)."""
    maturin = shutil.which("maturin", path=str(Path(sys.executable).parent))
    if maturin is None:
        pytest.skip("maturin not installed next to this interpreter")
    env = dict(os.environ)
    env.setdefault("VIRTUAL_ENV", sys.prefix)
    env.setdefault("PYO3_PYTHON", sys.executable)
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), str(Path.home() / ".cargo" / "bin"), env.get("PATH", "")]
    )
    proc = subprocess.run(
        [maturin, "build", "--release", "--quiet", "-o", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    wheels = list(tmp_path.glob("iokernel-*.whl"))
    assert len(wheels) == 1, wheels
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    expected = {f"iokernel/{p.name}" for p in PKG_SRC.iterdir()
                if p.suffix in (".py", ".pyi") or p.name == "py.typed"}
    assert expected - names == set(), "files under python/iokernel missing from the wheel"
    assert any(re.fullmatch(r"iokernel/_native\..*\.so", n) for n in names), names
