"""Fixtures: small models built in seconds, and real TorchServe instances on free loopback ports.

Each test is marked by its folder: ``unit`` (in-process, no server), ``integration`` (real
TorchServe instances), ``sagemaker`` (the serving image's contract and the deployment tool);
``pytest -m unit`` runs the fast ones.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from review_analysis.archives import build_mar
from review_analysis.ops import Operator, pack_router
from review_analysis.paths import MODEL_STORE, REPO
from review_analysis.torchserve import (
    LocalTorchServe,
    read_properties,
    start_server,
)
from tests.support.tiny_models import (
    TEST_MODEL_CONFIG,
    build_tiny_classifier,
    pack_sentiment_versions,
)

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(item.path.relative_to(TESTS).parts[0])


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny") / "sentiment")


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """sentiment 1.0 and 2.0 (different weights), packed by build_mar.sh with a test config."""
    store = tmp_path_factory.mktemp("store")
    config = store.parent / "test-model-config.yaml"
    config.write_text(TEST_MODEL_CONFIG)
    version_two = build_tiny_classifier(tmp_path_factory.mktemp("tiny2") / "sentiment", seed=1)
    build_mar("sentiment", "1.0", tiny_model_dir, "sentiment", store, config=str(config))
    build_mar(
        "sentiment",
        "2.0",
        version_two,
        "sentiment",
        store,
        config=str(config),
        archive_name="sentiment-2.0",
    )
    return store


@pytest.fixture(scope="session")
def tiny_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_store: Path
) -> Iterator[LocalTorchServe]:
    server = start_server(tmp_path_factory.mktemp("ts-tiny"), tiny_store, "sentiment.mar")
    yield server
    server.stop()


@pytest.fixture
def fresh_server(tmp_path: Path, tiny_store: Path) -> Iterator[LocalTorchServe]:
    """A TorchServe of its own (sentiment 1.0, small model) for tests that break things."""
    server = start_server(tmp_path / "ts", tiny_store, "sentiment.mar")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTorchServe]:
    """The default models from model_store/, as scripts/prepare_models.sh built them."""
    store = MODEL_STORE
    load_models = read_properties(REPO / "config.properties")["load_models"]
    missing = [m for m in load_models.split(",") if not (store / m).exists()]
    if missing:
        pytest.fail(f"{missing} not in model_store/: run scripts/prepare_models.sh first")
    server = start_server(tmp_path_factory.mktemp("ts-real"), store, load_models)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ab_archives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sentiment 1.0 and 2.0 (tiny, different weights, 5 ms batch delay) and sentiment-ab 1."""
    store = pack_sentiment_versions(tmp_path_factory.mktemp("ab"), {"1.0": (0, 5), "2.0": (1, 5)})
    pack_router("sentiment", {"1.0": 100}, 1, store, "sentiment-ab")
    return store


@pytest.fixture
def ab_server(tmp_path: Path, ab_archives: Path) -> Iterator[LocalTorchServe]:
    """Its own copy of the store: splits write new router archives into it."""
    store = shutil.copytree(ab_archives, tmp_path / "store")
    server = start_server(tmp_path / "ts", store, "sentiment-1.0.mar,sentiment-ab.mar")
    yield server
    server.stop()


@pytest.fixture
def operator(ab_server: LocalTorchServe) -> Iterator[Operator]:
    with ab_server.client() as client:
        yield Operator(client, ab_server.model_store, drain_seconds=1)
