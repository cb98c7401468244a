"""Rules every handler module and model config keeps (handlers/__init__.py, handlers/base.py)."""

from __future__ import annotations

import importlib

import pytest
import yaml
from ts.utils.util import list_classes_from_module

from handlers.base import DEFAULT_SETTINGS
from review_analysis.paths import CONFIGS

TASKS = ["sentiment", "toxicity", "absa", "review", "language"]


@pytest.mark.parametrize("module", [*TASKS, "router"])
def test_a_handler_module_defines_exactly_one_class(module):
    """TorchServe instantiates the one class defined in the --handler module."""
    assert len(list_classes_from_module(importlib.import_module(f"handlers.{module}"))) == 1


@pytest.mark.parametrize("task", TASKS)
def test_model_configs_hold_only_overrides_of_the_handler_defaults(task):
    """A shared setting is declared once: in a model config only where it differs."""
    config = yaml.safe_load((CONFIGS / task / "model-config.yaml").read_text())
    repeated = {
        key: value
        for key, value in config["handler"].items()
        if key in DEFAULT_SETTINGS and DEFAULT_SETTINGS[key] == value
    }
    assert repeated == {}


def test_review_flags_toxicity_with_the_toxicity_models_thresholds():
    """review.mar packs its own config: its toxicity section repeats the shipped thresholds,
    which must not drift apart."""

    def toxicity_settings(task: str) -> dict:
        handler = yaml.safe_load((CONFIGS / task / "model-config.yaml").read_text())["handler"]
        return handler.get("toxicity", handler) if task == "review" else handler

    review, toxicity = toxicity_settings("review"), toxicity_settings("toxicity")
    assert review["thresholds"] == toxicity["thresholds"]
    assert review["threshold"] == toxicity["threshold"]
