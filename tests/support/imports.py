"""What a part of the package imports, read from the source with ast, and which distributions that is.

`third_party_modules` starts at some modules or packages of `src/ttsfleet` and follows every import of
our own modules (a submodule brings its parent packages along, as at run time), collecting the
top-level names of the libraries they import. An import inside `try: … except ImportError` is
optional and left out (uvloop, the OpenTelemetry SDK). Roots can be taken at module level only: the
CLI imports each component inside its command, so following those would reach everything.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SOURCES = Path(__file__).resolve().parent.parent.parent / "src"
PROJECT = "ttsfleet"
_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")


def _path_of(module: str) -> Path | None:
    base = SOURCES.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _package_modules(module: str) -> list[str]:
    """`module` itself, or every module below it when it is a package."""
    path = _path_of(module)
    assert path is not None, f"no module {module} under {SOURCES}"
    if path.name != "__init__.py":
        return [module]
    return sorted(
        ".".join(found.relative_to(SOURCES).with_suffix("").parts).removesuffix(".__init__")
        for found in path.parent.rglob("*.py")
        if "__pycache__" not in found.parts
    )


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(
            isinstance(name, ast.Name) and name.id in ("ImportError", "ModuleNotFoundError") for name in names
        ):
            return True
    return False


def _imports(nodes: Iterable[ast.AST], top_level_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.Try) and _catches_import_error(node):
            yield from _imports(node.finalbody, top_level_only)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue  # for the type checker only, never run
        elif isinstance(node, ast.If | ast.Try) or (not top_level_only and isinstance(node, ast.stmt)):
            yield from _imports(ast.iter_child_nodes(node), top_level_only)


def _imported_names(module: str, top_level_only: bool) -> Iterator[str]:
    path = _path_of(module)
    assert path is not None
    for node in _imports(ast.parse(path.read_text()).body, top_level_only):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif node.level == 0 and node.module:
            yield node.module
            # `from ttsfleet import client` imports the module ttsfleet.client.
            yield from (
                f"{node.module}.{alias.name}" for alias in node.names if node.module.startswith(PROJECT)
            )


def third_party_modules(
    roots: Iterable[str], top_level_roots: Iterable[str] = (), excluded: Iterable[str] = ()
) -> set[str]:
    """Top-level names of the libraries that `roots` (whole packages) and `top_level_roots` (their
    module-level imports only) import, following our own modules but never into `excluded` packages."""
    found: set[str] = set()
    pending = [(module, False) for root in roots for module in _package_modules(root)]
    pending += [(module, True) for module in top_level_roots]
    seen: set[str] = set()
    left_out = tuple(excluded)
    while pending:
        module, top_level_only = pending.pop()
        if module in seen or any(module == out or module.startswith(out + ".") for out in left_out):
            continue
        seen.add(module)
        for name in _imported_names(module, top_level_only):
            top = name.partition(".")[0]
            if top != PROJECT:
                if top not in sys.stdlib_module_names and top != "__future__":
                    found.add(top)
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # a module's parent packages run first
                prefix = ".".join(parts[:depth])
                if _path_of(prefix) is not None:
                    pending.append((prefix, False))
    return found


def distributions_of(modules: Iterable[str]) -> dict[str, set[str]]:
    """The installed distributions providing each top-level module (canonical names)."""
    providers = importlib.metadata.packages_distributions()
    return {module: {canonicalize_name(name) for name in providers.get(module, [])} for module in modules}


def install_closure(requirements: Iterable[str], project_extras: dict[str, list[str]]) -> set[str]:
    """Canonical names of every distribution `requirements` install, read from the installed metadata
    (this environment has them all); `ttsfleet[x]` expands to the extra's requirements in pyproject."""
    found: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    pending = [Requirement(line) for line in requirements]
    while pending:
        requirement = pending.pop()
        name, extras = canonicalize_name(requirement.name), frozenset(requirement.extras)
        if (name, extras) in visited:
            continue
        visited.add((name, extras))
        if name == PROJECT:
            pending += [Requirement(line) for extra in extras for line in project_extras[extra]]
            continue
        found.add(name)
        for line in importlib.metadata.requires(name) or []:
            needed = Requirement(line)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in ("", *extras)):
                pending.append(needed)
    return found
