"""Counts that keep the code's shape visible, checked in CI (.ci/run) after the tests.

- imports of lstmlab's own modules made inside a function (an arrow of the import graph that
  only a reader of the function body sees), importlib's included;
- broad excepts: handlers that catch Exception or BaseException (or everything) and pass nothing
  on; one that re-raises what it does not handle (a bare `raise` in it, or `raise ... from` the
  caught error) is not one. These are the handlers ruff's BLE001 flags: each keeps a
  `# noqa: BLE001 - reason`;
- file cycles: groups of modules that import each other, directly or around a circle (every
  import counts: at the top, in a function, under TYPE_CHECKING);
- the longest module, in lines.

Each is printed for the whole of src/ and per folder (a wing of lstmlab, a Hydra plugin); the
limits below hold for the whole tree, and the script exits 1 when one is exceeded. Pure `ast`:
nothing is imported, so it runs in a second on any checkout.

    python tools/code_counts.py [--root PATH]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# The limits (issue 25). Raise one only with a reason in the commit message.
MAX_IN_FUNCTION_OWN_IMPORTS = 10
MAX_BROAD_EXCEPTS = 10
MAX_FILE_CYCLES = 0
MAX_MODULE_LINES = 350

OWN_PACKAGES = ("lstmlab", "hydra_plugins.lstmlab_")  # the project's own modules (the plugins' prefix)
BROAD = ("Exception", "BaseException")


@dataclass
class Module:
    name: str  # dotted: lstmlab.pipeline.experiment
    path: Path
    folder: str  # what the counts are grouped by: lstmlab/pipeline, hydra_plugins/lstmlab_launcher
    lines: int
    imports: set[str] = field(default_factory=set)  # own modules it imports, anywhere in the file
    in_function: list[str] = field(default_factory=list)  # "line: text" of own imports inside a function
    broad: list[str] = field(default_factory=list)  # "line: handler" of broad excepts


def modules(src: Path) -> dict[str, Module]:
    found = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        folder = "/".join(parts[:2]) if len(path.relative_to(src).parts) > 2 else f"{parts[0]} (top level)"
        name = ".".join(parts)
        found[name] = Module(name, path, folder, len(path.read_text().splitlines()))
    return found


def _own(name: str) -> bool:
    return name == "lstmlab" or name.startswith("lstmlab.") or name.startswith(OWN_PACKAGES[1])


def _package(module: Module) -> str:
    return module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]


def imported_names(node: ast.Import | ast.ImportFrom, module: Module, known: dict[str, Module]) -> list[str]:
    """The modules an import statement names (`from a import b`: a.b where that is a module, else a),
    as grimp (import-linter's graph) reads them."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the importing module's package up
        package = _package(module).split(".")
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return sorted({f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names})


def _dynamic(node: ast.Call) -> str | None:
    """The module importlib.import_module("lstmlab....") or __import__ names (its literal start)."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if called not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    if isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
        return str(first.values[0].value)
    return None  # a name computed at run time (a config's class): not one of ours that can be told


def _functions(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield node


def _catches_everything(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type
    if kinds is None:
        return True
    names = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    return any(isinstance(n, ast.Name) and n.id in BROAD for n in names)


def _passes_on(handler: ast.ExceptHandler) -> bool:
    """A bare `raise` in the handler, or a raise chained to the caught error (not in a nested function)."""
    for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
        if isinstance(node, ast.Raise) and (
            node.exc is None
            or handler.name is not None and isinstance(node.cause, ast.Name) and node.cause.id == handler.name
        ):
            return True
    return False


def scan(module: Module, known: dict[str, Module]) -> None:
    text = module.path.read_text()
    tree = ast.parse(text, str(module.path))
    lines = text.splitlines()
    inside: set[int] = set()
    for function in _functions(tree):
        for node in ast.walk(function):
            inside.add(id(node))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = imported_names(node, module, known)
        elif isinstance(node, ast.Call):
            dynamic = _dynamic(node)
            if dynamic and _own(dynamic):
                if id(node) in inside:
                    module.in_function.append(f"{node.lineno}: {lines[node.lineno - 1].strip()}")
                continue
        elif isinstance(node, ast.ExceptHandler) and _catches_everything(node) and not _passes_on(node):
            module.broad.append(f"{node.lineno}: {lines[node.lineno - 1].strip()}")
        own = [name for name in names if _own(name)]
        if not own:
            continue
        module.imports.update(name for name in own if name in known and name != module.name)
        if id(node) in inside:
            module.in_function.append(f"{node.lineno}: {lines[node.lineno - 1].strip()}")


def cycles(known: dict[str, Module]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(name: str) -> None:  # recursion depth: the longest import chain, a few dozen
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in sorted(known[name].imports):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(known):
        if name not in index:
            visit(name)
    return sorted(groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the project's root (default: this checkout)")
    options = parser.parse_args(argv)
    known = modules(options.root / "src")
    for module in known.values():
        scan(module, known)
    circles = cycles(known)

    by_folder: dict[str, list[Module]] = defaultdict(list)
    for module in known.values():
        by_folder[module.folder].append(module)
    print(f"{'folder':<36} {'modules':>7} {'in-function own imports':>24} {'broad excepts':>14} {'longest':>8}")
    for folder in sorted(by_folder):
        group = by_folder[folder]
        print(f"{folder:<36} {len(group):>7} {sum(len(m.in_function) for m in group):>24} "
              f"{sum(len(m.broad) for m in group):>14} {max(m.lines for m in group):>8}")

    everything = list(known.values())
    longest = max(everything, key=lambda m: m.lines)
    totals = [
        ("in-function own imports", sum(len(m.in_function) for m in everything), MAX_IN_FUNCTION_OWN_IMPORTS),
        ("broad excepts", sum(len(m.broad) for m in everything), MAX_BROAD_EXCEPTS),
        ("file cycles", len(circles), MAX_FILE_CYCLES),
        (f"longest module ({longest.path.relative_to(options.root)})", longest.lines, MAX_MODULE_LINES),
    ]
    print()
    for title, kind in (("in-function own imports", "in_function"), ("broad excepts", "broad")):
        print(f"{title}:")
        for module in everything:
            for item in getattr(module, kind):
                print(f"  {module.path.relative_to(options.root)}:{item}")
    print("file cycles:" + ("" if circles else " none"))
    for group in circles:
        print("  " + " <-> ".join(group))
    for module in sorted(everything, key=lambda m: -m.lines):
        if module.lines > MAX_MODULE_LINES:
            print(f"over {MAX_MODULE_LINES} lines: {module.path.relative_to(options.root)} ({module.lines})")

    print()
    exceeded = False
    for name, value, limit in totals:
        ok = value <= limit
        exceeded |= not ok
        print(f"{name}: {value} (limit {limit}){'' if ok else '  EXCEEDED'}")
    return 1 if exceeded else 0


if __name__ == "__main__":
    sys.exit(main())
