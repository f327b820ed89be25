"""docs/ARCHITECTURE.md is the contract: its table of who may import whom is enforced on every
import in the product packages (function-level imports included), no module takes part in an
import cycle, and every product module is named in its package's section of the document, so a
module added later without a line there fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"


def documented_rules() -> dict[str, set[str]]:
    """{package: the packages (or `package.module`s) it may import} from the document's table."""
    text = DOC.read_text()
    table = text[text.index("| package | may import") :].split("\n\n")[0]
    rules = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        package = cells[0].strip("`")
        rules[package] = set(re.findall(r"`([a-z_.]+)`", cells[1]))
    return rules


def product_packages() -> list[str]:
    return sorted(documented_rules())


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module in the product packages."""
    out = {}
    for package in product_packages():
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (relative imports resolved)."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def allowed(importer: str, imported: str, rules: dict[str, set[str]]) -> bool:
    own, other = importer.split(".")[0], imported.split(".")[0]
    if own == other:
        return True
    return any(imported == rule or imported.startswith(rule + ".") for rule in rules[own])


def test_every_import_follows_the_documented_table():
    rules = documented_rules()
    assert {"training", "lsproto", "backend", "sync", "cli"} <= set(rules)
    broken = [
        f"{a} imports {b}" for a, deps in import_graph().items() for b in sorted(deps) if not allowed(a, b, rules)
    ]
    assert not broken, "imports the table in docs/ARCHITECTURE.md does not allow:\n" + "\n".join(broken)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def section(package: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(package)}/.*?(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/ARCHITECTURE.md has no section '## {package}/'"
    return match.group(0)


@pytest.mark.parametrize("package", product_packages())
def test_every_module_is_in_the_architecture_document(package):
    """Each module is named in its package's section by its path inside the package
    (`store.py`, `api/app.py`); package `__init__.py` files are described by their folder."""
    text = section(package)
    named = set(re.findall(r"`([\w/]+\.py)`", text)) | set(re.findall(r"`([\w/]+/)`", text))
    missing = []
    for path in sorted((REPO / package).rglob("*.py")):
        rel = path.relative_to(REPO / package).as_posix()
        if path.name == "__init__.py":
            rel = rel[: -len("__init__.py")]
            if not rel:
                continue
        if rel not in named:
            missing.append(rel)
    assert not missing, f"docs/ARCHITECTURE.md, section {package}/, does not name: {missing}"
