"""The package's modules import one another in one direction: no module-level import cycle
(an import made inside a function, to stay lazy, is not a cycle)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "torch_gdla"


def _graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.parse(path.read_text()).body:  # module level only; `if TYPE_CHECKING:` skipped
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                for candidate in (target, *(f"{target}.{alias.name}" for alias in node.names)):
                    if candidate in graph and candidate != name:
                        graph[name].add(candidate)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names if alias.name in graph)
    return graph


def _is_package_of(a: str, b: str) -> bool:
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_module_level_import_cycle():
    graph = _graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in path:
                cycle = path[path.index(nxt):] + [nxt]
                # a package importing its own submodules (its __init__'s re-exports) is not a cycle
                if not all(_is_package_of(a, b) for a, b in zip(cycle, cycle[1:])):
                    cycles.append(" -> ".join(cycle))
            elif len(path) < 25:
                visit(nxt, path + [nxt])

    for module in graph:
        visit(module, [module])
    assert not cycles, sorted(set(cycles))[:10]
