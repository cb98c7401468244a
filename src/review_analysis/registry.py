"""The bundle's models as ``configs/models.yaml`` declares them: what is built, what is packed."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from review_analysis.paths import CONFIGS, MODELS, REGISTRY

# The first version of every archive the bundle packs.
FIRST_VERSION = "1.0"


@dataclass(frozen=True)
class ModelDir:
    """A model directory under artifacts/models/ and the command that builds it."""

    name: str
    about: str
    done: str
    build: tuple[str, ...]

    @property
    def path(self) -> Path:
        return MODELS / self.name

    def is_built(self) -> bool:
        return (self.path / self.done).is_file()

    def build_command(self, output: Path) -> list[str]:
        """The review-analysis arguments that build this directory into ``output``."""
        return [part.format(output=output, models=MODELS) for part in self.build]


@dataclass(frozen=True)
class Task:
    """One served task: its handler, its model config and the model directories it packs."""

    name: str
    handler: str
    parts: dict[str, str]  # part ("" for the whole model/ directory) -> model directory name
    language: str

    @property
    def archive(self) -> str:
        return f"{self.name}.mar"

    @property
    def router(self) -> str:
        """The task's A/B router model, /predictions/{name}-ab."""
        return f"{self.name}-ab"

    @property
    def model_config(self) -> Path:
        return CONFIGS / self.handler / "model-config.yaml"

    def model_dir_specs(self) -> list[str]:
        """build_mar.sh's --model-dir values: DIR, or PART=DIR for a handler of several."""
        return [
            f"{part}={MODELS / name}" if part else str(MODELS / name)
            for part, name in self.parts.items()
        ]


@dataclass(frozen=True)
class Registry:
    model_dirs: dict[str, ModelDir]
    tasks: dict[str, Task]

    def archives(self) -> list[str]:
        """Every archive the server loads: the tasks, then their routers."""
        return [t.archive for t in self.tasks.values()] + [
            f"{t.router}.mar" for t in self.tasks.values()
        ]


@cache
def load(path: Path = REGISTRY) -> Registry:
    declared = yaml.safe_load(path.read_text())
    return Registry(
        model_dirs={
            name: ModelDir(name, spec["about"], spec["done"], tuple(spec["build"]))
            for name, spec in declared["model_dirs"].items()
        },
        tasks={
            name: Task(name, spec["handler"], dict(spec["model_dirs"]), spec["language"])
            for name, spec in declared["tasks"].items()
        },
    )
