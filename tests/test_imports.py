"""The imports among enerdatx/ modules point one way: no module needs itself to load.

Walks every module's source (no importing): module-level imports count, those under
``if TYPE_CHECKING:`` do not (they never run). Importing ``a.b.c`` also runs the packages
``a`` and ``a.b``, unless the importer lives inside them (a package loading its own modules).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"enerdatx": ROOT / "enerdatx", "enerdatx.widgets": ROOT / "widgets"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, directory in PACKAGES.items():
        for path in directory.rglob("*.py"):
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module, module: str, is_package: bool) -> list[str]:
    names: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.If):
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    return names


def import_graph() -> nx.DiGraph:
    """Module -> the enerdatx modules that loading it runs first."""
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        for name in _runtime_imports(tree, module, is_package):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in modules and target not in own_packages:
                    graph.add_edge(module, target)
    return graph


def test_the_walk_sees_imports():
    graph = import_graph()
    assert graph.has_edge("enerdatx.market.service", "enerdatx.market.community")
    assert graph.has_edge("enerdatx.lab", "enerdatx.peer")
    assert not graph.has_edge("enerdatx.market.community", "enerdatx.market.service")  # the edge of issue 14


def test_no_import_cycle_among_enerdatx_modules():
    cycles = sorted(sorted(cycle) for cycle in nx.simple_cycles(import_graph()))
    assert cycles == []


def test_the_trustchain_knows_nothing_of_the_market():
    graph = import_graph()
    trustchain = [m for m in graph if m.startswith("enerdatx.trustchain")]
    reached = set().union(*(nx.descendants(graph, m) for m in trustchain))
    assert not {m for m in reached if m.startswith(("enerdatx.market", "enerdatx.peer", "enerdatx.lab"))}


def test_the_content_store_interface_loads_no_daemon_client():
    code = "import enerdatx.ipfs.store, sys; assert 'ipfshttpclient' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_trade_and_market_signatures_name_no_any():
    tree = ast.parse((ROOT / "enerdatx" / "market" / "market.py").read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    annotations = []
    for node in ast.walk(classes["Market"]), ast.walk(classes["Trade"]):
        for item in node:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = [*item.args.args, *item.args.kwonlyargs, item.args.vararg, item.args.kwarg]
                annotations += [a.annotation for a in arguments if a is not None and a.annotation is not None]
                annotations.append(item.returns)
            elif isinstance(item, ast.AnnAssign):
                annotations.append(item.annotation)
    written = [ast.unparse(a) for a in annotations if a is not None]
    assert len(written) > 30  # the walk found the signatures
    assert [a for a in written if "Any" in a] == []


def test_the_architecture_page_names_every_module():
    page = (ROOT / "docs" / "architecture.md").read_text()
    unnamed = []
    for module, path in _modules().items():
        if path.name in ("__init__.py", "__main__.py") or module.startswith(("enerdatx.widgets", "enerdatx.cli", "enerdatx.bench")):
            continue  # packages, the command line and its benchmarks are named as a whole
        if f"`{path.name}`" not in page:
            unnamed.append(module)
    assert unnamed == []
