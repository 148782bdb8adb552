"""Prints jaxface's import graph between its rooms (subpackages) and what breaks the one-way
order: imports that point up the layers, and circles.

    python scripts/import_graph.py            # the graph, then the violations (exit 1 if any)

Layers, lowest first (a room may import its own layer's other rooms only where listed as
lower): every import, at module level or inside a function, counts.
"""

from __future__ import annotations

import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "jaxface"
# Lower number = lower layer; a room may import rooms of a lower number only (and itself).
LAYERS = {
    "assets": 0, "configs": 0, "host_memory": 0,
    "geometry": 1,
    "flame": 2, "render": 2,
    "models": 3,
    "reconstruction": 4,
    "losses": 5,
    "data": 6,
    "train": 7, "infer": 7, "eval": 7,
    "export": 8,           # reads training runs
    "cli": 9, "__main__": 10,
}


def room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "jaxface" or len(parts) < 2:
        return None
    return parts[1]


def imports(path: pathlib.Path) -> set[str]:
    """The jaxface modules a file imports (absolute or relative, anywhere in the file)."""
    package = ".".join(("jaxface",) + path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("jaxface")}


def room_graph() -> dict[str, dict[str, set[str]]]:
    """room -> imported room -> the files making that import."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        room = rel.parts[0].removesuffix(".py")
        for module in imports(path):
            target = room_of(module)
            if target and target != room and (ROOT / target).exists() or (
                    target and (ROOT / f"{target}.py").exists() and target != room):
                graph.setdefault(room, {}).setdefault(target, set()).add(str(rel))
    return graph


def circles(graph) -> list[list[str]]:
    found, seen = [], set()

    def walk(node, stack):
        for nxt in graph.get(node, {}):
            if nxt in stack:
                cycle = stack[stack.index(nxt):]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle + [nxt])
            else:
                walk(nxt, stack + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def main() -> int:
    graph = room_graph()
    for room in sorted(graph, key=lambda r: (LAYERS.get(r, 99), r)):
        print(f"{room:>15} -> {', '.join(sorted(graph[room], key=lambda r: LAYERS.get(r, 99)))}")
    upward = [(a, b, sorted(files)) for a, targets in graph.items()
              for b, files in targets.items() if LAYERS.get(b, 99) >= LAYERS.get(a, 99)]
    loops = circles(graph)
    for a, b, files in sorted(upward):
        print(f"upward or sideways: {a} -> {b} ({', '.join(files)})")
    for cycle in loops:
        print("circle: " + " -> ".join(cycle))
    if not upward and not loops:
        print("one-way: no upward import, no circle")
    return 1 if upward or loops else 0


if __name__ == "__main__":
    sys.exit(main())
