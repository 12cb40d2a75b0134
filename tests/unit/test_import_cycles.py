"""No import cycles in the Python package nor in the native binding's modules.

A cycle means two modules can only be understood (and changed) together;
the binding used to have one (completer ↔ pg ↔ submit) and so did the CLI
(``_cli`` ↔ ``_top``). These tests keep them from coming back.

How the graphs are made (no compiler needed):

* Python: every ``import``/``from ... import`` in ``python/iokernel/*.py``,
  also those inside functions (a lazy import is still a dependency).
* Rust: one node per file (``src/python/pg/mod.rs`` is ``python::pg``). An
  edge is a path that starts at ``crate::``, ``super::``, ``self::`` or at a
  child module's name, in a ``use`` or in code, resolved to the deepest
  module it names. Comments and string literals are skipped. ``pub use``
  re-exports are not edges: a parent that re-exports its children's items
  (a facade) while the children use the parent's own items is not a cycle.
  Inline modules (``mod tests { ... }``) belong to their file.

Run as a script to print every cycle in ``src/`` and ``python/iokernel``
(``--graph``: the edges too): ``python tests/unit/test_import_cycles.py``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "iokernel"
SRC = ROOT / "src"

Graph = dict[str, set[str]]


# ------------------------------------------------------------------- cycles
def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (or a
    module that imports itself), each sorted; Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def cycle_path(graph: Graph, comp: list[str]) -> list[str]:
    """One concrete cycle inside ``comp``, for the failure message."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if w in members and w not in prev:
                prev[w] = v
                todo.append(w)
    return comp


def describe(graph: Graph) -> str:
    return "; ".join(" → ".join(cycle_path(graph, c)) for c in cycles(graph))


# ------------------------------------------------------------------- Python
def python_graph(package: Path = PACKAGE) -> Graph:
    name = package.name
    modules = {p.stem for p in package.iterdir() if p.suffix in (".py", ".pyi")}
    modules.update(p.name.split(".")[0] for p in package.glob("*.so"))

    def node(sub: str) -> str:
        return name if sub == "__init__" else f"{name}.{sub}"

    graph: Graph = {}
    for path in sorted(package.glob("*.py")):
        me = node(path.stem)
        deps = graph.setdefault(me, set())
        for n in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(n, ast.Import):
                for a in n.names:
                    parts = a.name.split(".")
                    if parts[0] == name and len(parts) > 1 and parts[1] in modules:
                        deps.add(node(parts[1]))
            elif isinstance(n, ast.ImportFrom):
                if n.level > 1:
                    continue  # no subpackages
                if n.level == 1:
                    parts = n.module.split(".") if n.module else []
                elif n.module and n.module.split(".")[0] == name:
                    parts = n.module.split(".")[1:]
                else:
                    continue
                if parts:
                    deps.add(node(parts[0]) if parts[0] in modules else name)
                else:  # from . import a, b
                    for a in n.names:
                        deps.add(node(a.name) if a.name in modules else name)
        deps.discard(me)
    return graph


# --------------------------------------------------------------------- Rust
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|::|[{};,*]|\S")


_SPECIAL = re.compile(r"//|/\*|(?<!\w)b?r#*\"|\"|'")


def _strip(code: str) -> str:
    """``code`` with comments, string and char literals blanked out."""
    out: list[str] = []
    i, n = 0, len(code)
    while (m := _SPECIAL.search(code, i)) is not None:
        out.append(code[i : m.start()])
        i, tok = m.end(), m.group()
        if tok == "//":
            j = code.find("\n", i)
            i = n if j < 0 else j
        elif tok == "/*":
            depth = 1
            while i < n and depth:
                if code.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif code.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
        elif tok.endswith('"') and len(tok) > 1:  # a raw string: r"..", br#".."#
            end = '"' + "#" * tok.count("#")
            j = code.find(end, i)
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif tok == '"':
            while i < n and code[i] != '"':
                i += 2 if code[i] == "\\" else 1
            i += 1
            out.append('""')
        elif i < n and (code[i] == "\\" or code[i + 1 : i + 2] == "'"):  # a char literal
            while i < n and code[i] != "'":
                i += 2 if code[i] == "\\" else 1
            i += 1
            out.append("' '")
        else:  # a lifetime or label
            out.append(tok)
    out.append(code[i:])
    return "".join(out)


def _rust_modules(src: Path) -> dict[tuple[str, ...], Path]:
    mods: dict[tuple[str, ...], Path] = {}
    for p in src.rglob("*.rs"):
        parts = p.relative_to(src).with_suffix("").parts
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        mods[tuple(parts)] = p
    return mods


def _use_paths(tokens: list[str], i: int) -> tuple[list[list[str]], int]:
    """The paths of the ``use`` tree starting at ``tokens[i]``; and where it ends."""

    def tree(i: int, prefix: list[str]) -> tuple[list[list[str]], int]:
        path = list(prefix)
        while i < len(tokens):
            t = tokens[i]
            if t == "{":
                out: list[list[str]] = []
                i += 1
                while tokens[i] != "}":
                    sub, i = tree(i, path)
                    out += sub
                    if tokens[i] == ",":
                        i += 1
                return out, i + 1
            if t == "*":
                return [path], i + 1
            if t == "as":
                i += 2
                continue
            if t in (",", "}", ";"):
                return [path], i
            if t != "::":
                path.append("" if t == "self" and path else t)
            i += 1
        return [path], i

    return tree(i, [])


def _resolve(path: list[str], here: tuple[str, ...], known: set[tuple[str, ...]],
             children: set[str]) -> tuple[str, ...] | None:
    """The module ``path`` (as written in module ``here``) names, None if
    it is in another crate (std, pyo3, bytes, ...)."""
    segs = [s for s in path if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base: tuple[str, ...] = ()
        segs = segs[1:]
    elif segs[0] in ("self", "super"):
        base = here
        while segs and segs[0] in ("self", "super"):
            if segs.pop(0) == "super":
                base = base[:-1]
    elif segs[0] in children:
        base = here
    else:
        return None
    for s in segs:
        if (*base, s) not in known:
            break
        base = (*base, s)
    return base


def rust_graph(src: Path = SRC) -> Graph:
    mods = _rust_modules(src)
    known = set(mods)
    kids: dict[tuple[str, ...], set[str]] = {}
    for m in known:
        if m:
            kids.setdefault(m[:-1], set()).add(m[-1])
    graph: Graph = {}
    for here, path in sorted(mods.items()):
        me = "::".join(here) or "crate"
        deps = graph.setdefault(me, set())
        tokens = _TOKEN.findall(_strip(path.read_text()))
        inline: list[tuple[str, int]] = []  # (name, brace depth) of `mod x {`
        ctx, children = here, kids.get(here, set())
        depth = 0
        i = 0
        while i < len(tokens):
            t = tokens[i]
            paths: list[list[str]] = []
            if t == "{":
                depth += 1
            elif t == "}":
                if inline and inline[-1][1] == depth:
                    inline.pop()
                    ctx = (*here, *(name for name, _ in inline))
                    children = kids.get(ctx, set())
                depth -= 1
            elif t == "mod" and i + 2 < len(tokens) and tokens[i + 2] == "{":
                inline.append((tokens[i + 1], depth + 1))
                ctx = (*here, *(name for name, _ in inline))
                children = kids.get(ctx, set())
            elif t == "use":
                public = i > 0 and tokens[i - 1] in ("pub", ")")
                paths, i = _use_paths(tokens, i + 1)
                if public:
                    paths = []  # a re-export
            elif (
                (t in ("crate", "self", "super") or t in children)
                and (i == 0 or tokens[i - 1] not in ("::", "mod", "$"))
                and tokens[i + 1 : i + 2] == ["::"]
            ):
                path = []
                while i < len(tokens) and (tokens[i] == "::" or tokens[i][0].isalnum()
                                           or tokens[i][0] == "_"):
                    if tokens[i] != "::":
                        path.append(tokens[i])
                    i += 1
                paths = [path]
                i -= 1
            for p in paths:
                target = _resolve(p, ctx, known, children)
                if target is not None and target != here:
                    deps.add("::".join(target) or "crate")
            i += 1
    return graph


def _under(graph: Graph, prefix: str) -> Graph:
    return {
        k: {d for d in v if d == prefix or d.startswith(prefix + "::")}
        for k, v in graph.items()
        if k == prefix or k.startswith(prefix + "::")
    }


# -------------------------------------------------------------------- tests
def test_the_checker_finds_a_cycle() -> None:
    g: Graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert describe(g) == "a → b → c → a"
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_rust_reader_resolves_paths(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "lib.rs").write_text("mod p;\n")
    (tmp_path / "p" / "mod.rs").write_text(
        "mod a;\nmod b;\npub use a::Thing; // a re-export, not an edge\n"
        'fn f() { let s = "super::c::x"; b::go(); }\n'
    )
    (tmp_path / "p" / "a.rs").write_text(
        "use super::{b::{self, Other}, c};\nuse crate::p::Top;\n"
        "#[cfg(test)]\nmod tests { use super::super::b; }\n"
    )
    (tmp_path / "p" / "b.rs").write_text(
        "// use super::a;\nfn g<'a>(x: &'a str) -> char { '{' }\n"
        'const S: &[u8] = br#"super::a::x "quoted" /* no"#; const Q: char = \'"\';\n'
        "/* use super::a; /* nested */ super::a */\n"
    )
    (tmp_path / "p" / "c.rs").write_text("fn h() { super::a::run(); }\n")
    g = rust_graph(tmp_path)
    assert g["p"] == {"p::b"}
    assert g["p::a"] == {"p", "p::b", "p::c"}
    assert g["p::b"] == set()
    assert g["p::c"] == {"p::a"}
    assert describe(g) == "p::a → p::c → p::a"
    assert cycles(g) == [["p::a", "p::c"]]


def test_the_python_package_has_no_import_cycles() -> None:
    g = python_graph()
    assert g["iokernel._cli"] >= {"iokernel._target", "iokernel._top"}  # the reader works
    assert not cycles(g), describe(g)


def test_the_native_binding_has_no_module_cycles() -> None:
    g = rust_graph()
    assert "python::core::completer" in g["python::core::service"]  # the reader works
    binding = _under(g, "python")
    assert not cycles(binding), describe(binding)


def test_the_native_sources_have_no_module_cycles() -> None:
    """The whole of src/: the kernel's layers (transport, handshake, dispatch,
    conn, service and its parts) only depend downwards."""
    g = rust_graph()
    assert "kernel::dispatch" in g["kernel::conn"]  # the reader works
    assert not cycles(g), describe(g)


def test_the_kernel_names_no_protocol() -> None:
    g = rust_graph()
    kernel = {k: v for k, v in g.items() if k == "kernel" or k.startswith("kernel::")}
    for module, deps in sorted(kernel.items()):
        named = {d for d in deps if d.startswith(("protocols", "codec", "python"))}
        assert not named, f"{module} depends on protocol modules {sorted(named)}"


def test_the_binding_core_names_no_protocol() -> None:
    g = rust_graph()
    core = {k: v for k, v in g.items() if k == "python::core" or k.startswith("python::core::")}
    for module, deps in sorted(core.items()):
        named = {d for d in deps if d.startswith(("python::redis", "python::pg", "protocols", "codec"))}
        assert not named, f"{module} depends on protocol modules {sorted(named)}"


def _main() -> int:
    found = 0
    for title, g in (("python/iokernel", python_graph()), ("src", rust_graph())):
        if "--graph" in sys.argv:
            print("\n".join(f"{k} -> {', '.join(sorted(v))}" for k, v in sorted(g.items())))
        for c in cycles(g):
            print(f"{title}: {' → '.join(cycle_path(g, c))}")
            found += 1
    if not found:
        print("no cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(_main())
