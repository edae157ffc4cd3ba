"""The package's own structure: its modules import each other without a cycle."""
import ast
from pathlib import Path

import iotstream


def _package_imports(path: Path) -> set:
    """The package modules a module imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module)
            else:
                names.update(alias.name for alias in node.names)
    return names


def test_modules_import_each_other_without_a_cycle():
    folder = Path(iotstream.__file__).parent
    modules = {path.stem: path for path in folder.glob("*.py") if path.stem != "__init__"}
    graph = {name: _package_imports(path) & modules.keys() for name, path in modules.items()}
    assert graph["_broker"] >= {"_client", "_pipeline"}, graph  # the walk does see imports
    done, visiting = set(), []

    def visit(name: str) -> None:
        assert name not in visiting, "import cycle: " + " -> ".join(visiting[visiting.index(name):] + [name])
        if name in done:
            return
        visiting.append(name)
        for dependency in sorted(graph[name]):
            visit(dependency)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_topics_and_defaults_come_from_the_core():
    """TOPICS, the default stages and the pipeline keys are the core's (iots_defaults_json())."""
    doc = iotstream.defaults()
    assert iotstream.TOPICS == doc["topics"]
    assert iotstream.TOPICS["readings"] == "iot-readings" and iotstream.TOPICS["dlq"] == "iot-dlq"
    assert [s["plugin"] for s in doc["stages"]] == ["anomaly", "aggregate", "window"]
    keys = {key["path"]: key for key in doc["keys"]}
    assert keys["input.max_batch"]["default"] == 10000 and keys["input.max_batch"]["min"] == 1
    assert keys["input.topics"]["default"] == [iotstream.TOPICS["readings"]]
    assert keys["outputs"]["default"] == {k: v for k, v in iotstream.TOPICS.items() if k != "readings"}
    doc["topics"]["readings"] = "changed"  # a copy: the package's own stays
    assert iotstream.defaults()["topics"]["readings"] == "iot-readings"
