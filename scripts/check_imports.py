"""The package's import structure, as ARCHITECTURE.md wants it: no import cycle among the modules of
``python/ganmetrics`` (imports inside functions counted: an import that dodges a cycle at load time is still a
cycle in the design), and imports inside functions only for optional heavy dependencies -- a third-party
package in HEAVY, or a module of the package that itself imports one at module level (loading it is loading
that dependency).

    python scripts/check_imports.py          # prints what it finds; exit status 1 when anything is wrong

Run by tests/test_structure.py.
"""

from __future__ import annotations

import ast
import os
import sys

HEAVY = {"torch", "torchvision", "torchmetrics", "matplotlib", "open_clip", "timm", "PIL", "safetensors", "sklearn",
         "pandas", "scipy", "tensorboard", "tqdm"}


def package_modules(root: str) -> dict[str, str]:
    """Dotted module name -> file, for every module of the package."""
    base = os.path.join(root, "python")
    mods = {}
    for folder, _, files in os.walk(os.path.join(base, "ganmetrics")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, base)[:-3].replace(os.sep, ".")
                mods[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return mods


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[ast.AST, list[str], bool]]:
    """(node, absolute names it imports, whether it sits inside a function) for every import statement."""
    inner = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    out = []
    base = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                mod = ".".join(parts + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        out.append((node, names, id(node) in inner))
    return out


def check(root: str) -> list[str]:
    mods = package_modules(root)

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in mods:
                return ".".join(parts[:i])
        return None

    parsed = {m: _imports(ast.parse(open(p, encoding="utf-8").read(), p), m, p.endswith("__init__.py"))
              for m, p in mods.items()}
    heavy_at_top = {m for m, imps in parsed.items()
                    if any(not inside and n.split(".")[0] in HEAVY for _, names, inside in imps for n in names)}
    problems, edges = [], {m: set() for m in mods}
    for m, imps in parsed.items():
        for node, names, inside in imps:
            targets = {resolve(n) for n in names} - {None, m}
            # a package importing its own submodules is how it exposes names; ganmetrics.__version__ is read-only
            targets = {t for t in targets if not t.startswith(m + ".") and not (t == "ganmetrics" and m != t)}
            edges[m] |= targets
            if not inside:
                continue
            named = names[1:] if isinstance(node, ast.ImportFrom) else names  # from X import Y: X.Y, else X
            own = {t for t in (resolve(n) for n in named) if t and t != m}
            third = {n.split(".")[0] for n in names if not n.startswith("ganmetrics")}
            bad = sorted(t for t in own if t not in heavy_at_top) + sorted(third - HEAVY)
            if bad:
                problems.append(f"{mods[m]}:{node.lineno}: import inside a function of {', '.join(bad)} "
                                "(not an optional heavy dependency): import it at module level")
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                problems.append("import cycle: " + " <-> ".join(sorted(comp)))

    sys.setrecursionlimit(10000)
    for v in sorted(mods):
        if v not in index:
            strong(v)
    return problems


def main() -> int:
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    problems = check(root)
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s) among {len(package_modules(root))} modules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
