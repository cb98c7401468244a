"""Every metric the handlers record is declared in metrics.yaml, with the kind it is used as.

In ``metrics_mode=prometheus`` TorchServe exports only declared metrics, and a handler that
records an undeclared one only logs a warning (handlers/metrics.py): a missing declaration
must fail here instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from handlers import metrics
from review_analysis.paths import REPO

HANDLERS = REPO / "handlers"
# ModelMetrics' recording methods, and the metrics.yaml section each one writes to.
KINDS = {"observe": "histogram", "count": "counter", "set": "gauge"}


def declared_metrics(metrics_yaml: str) -> set[tuple[str, str]]:
    """(kind, name) of every model metric a metrics.yaml declares."""
    sections = yaml.safe_load(metrics_yaml).get("model_metrics") or {}
    return {(kind, m["name"]) for kind, items in sections.items() for m in items or []}


def recorded_metrics(handlers_dir: Path) -> set[tuple[str, str]]:
    """(kind, name) of every metric the handlers record: each call of a ModelMetrics method
    on ``...metrics`` (or on ``self`` inside metrics.py), its name a string literal or a
    module constant. A name computed at run time cannot be checked, so it is an error."""
    found = set()
    for path in sorted(handlers_dir.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name) and isinstance(node.value.value, str)
        }
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in KINDS
                and is_metrics(node.func.value, path)
            ):
                continue
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                found.add((KINDS[node.func.attr], name.value))
            elif isinstance(name, ast.Name) and name.id in constants:
                found.add((KINDS[node.func.attr], constants[name.id]))
            else:
                raise AssertionError(f"{path.name}:{node.lineno}: metric name is not a constant")
    return found


def is_metrics(receiver: ast.expr, path: Path) -> bool:
    if isinstance(receiver, ast.Attribute) and receiver.attr == "metrics":
        return True
    return path.name == "metrics.py" and isinstance(receiver, ast.Name) and receiver.id == "self"


def undeclared(handlers_dir: Path, metrics_yaml: str) -> set[tuple[str, str]]:
    return recorded_metrics(handlers_dir) - declared_metrics(metrics_yaml)


def test_every_recorded_metric_is_declared():
    assert undeclared(HANDLERS, (REPO / "metrics.yaml").read_text()) == set()


def test_the_scan_finds_the_metrics_of_every_kind():
    recorded = recorded_metrics(HANDLERS)
    assert {
        ("histogram", metrics.LATENCY),
        ("counter", metrics.ERRORS),
        ("counter", "reviews_sentiment_predictions_total"),
        ("gauge", "reviews_ab_weight_ratio"),
    } <= recorded
    assert len(recorded) >= 10


def test_a_metric_missing_from_metrics_yaml_is_reported():
    text = (REPO / "metrics.yaml").read_text()
    without = text.replace("- name: reviews_toxicity_flagged_texts_total", "- name: renamed")
    assert without != text
    assert undeclared(HANDLERS, without) == {("counter", "reviews_toxicity_flagged_texts_total")}


def test_a_metric_declared_as_another_kind_is_reported():
    declared = yaml.safe_load((REPO / "metrics.yaml").read_text())
    sections = declared["model_metrics"]
    moved = next(m for m in sections["counter"] if m["name"] == metrics.TEXTS)
    sections["counter"].remove(moved)
    sections["gauge"].append(moved)
    assert undeclared(HANDLERS, yaml.safe_dump(declared)) == {("counter", metrics.TEXTS)}


def test_a_computed_metric_name_is_an_error(tmp_path):
    (tmp_path / "task.py").write_text("def f(self, n):\n    self.metrics.count(n, {})\n")
    with pytest.raises(AssertionError, match=r"task\.py:2: metric name is not a constant"):
        recorded_metrics(tmp_path)
