"""Imports run one way between the top-level folders, as read from the code's own import
statements (also those inside functions): trainer <- components <- pipeline <- kubeflow, and
serving needs only the serving contract, the image codecs and TF Serving's messages. Tests may
import anything."""

import ast
from pathlib import Path

from pipeline.settings import PROJECT_ROOT

FOLDERS = ("trainer", "components", "pipeline", "kubeflow", "serving", "tests")
ALLOWED = {
    "trainer": set(),
    "components": {"trainer"},
    "serving": {"trainer", "components"},
    "pipeline": {"trainer", "components", "serving"},
    "kubeflow": {"trainer", "components", "pipeline"},
}
# What serving may import from the rest: names and signatures, the PNG/IDX codecs, the process
# helpers (standard library only), and TF Serving's messages as the serving check sends them.
SERVING_CONTRACT = {
    "trainer.features",
    "components.data.codecs",
    "components.child_process",
    "components.tf_serving_api",
}


def layer(path: Path) -> str:
    """A test module belongs to the tests, wherever it sits."""
    relative = path.relative_to(PROJECT_ROOT)
    if path.name.endswith("_test.py") or path.name == "conftest.py":
        return "tests"
    return relative.parts[0]


def imports(path: Path) -> set[str]:
    """The project modules `path` imports, by dotted name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] in FOLDERS}


def module_imports() -> dict[Path, set[str]]:
    return {
        path: imports(path)
        for folder in FOLDERS
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
    }


def folder_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {folder: set() for folder in FOLDERS}
    for path, names in module_imports().items():
        graph[layer(path)] |= {name.split(".")[0] for name in names} - {layer(path)}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path of nodes, or None."""
    visiting, done = [], set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for successor in sorted(graph[node]):
            found = visit(successor)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return None

    return next(filter(None, map(visit, sorted(graph))), None)


def test_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_top_level_folders():
    assert cycle(folder_graph()) is None


def test_each_folder_imports_only_the_folders_below_it():
    graph = folder_graph()
    wrong = {folder: graph[folder] - allowed for folder, allowed in ALLOWED.items()}
    assert not any(wrong.values()), wrong


def test_serving_imports_only_the_serving_contract():
    for path, names in module_imports().items():
        if layer(path) == "serving":
            outside = {n for n in names if not n.startswith("serving")}
            assert all(any(n.startswith(c) for c in SERVING_CONTRACT) for n in outside), (
                path,
                outside,
            )
