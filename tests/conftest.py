"""Fixtures: small models built in seconds, and real TorchServe instances on free loopback ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.archives import build_mar
from scripts.ops import Operator, pack_router
from scripts.torchserve import (
    REPO,
    LocalTorchServe,
    read_properties,
    start_server,
)
from tests.tiny_models import build_tiny_classifier

# Fast batching for tests: a long delay makes concurrent requests share a batch for certain.
TEST_MODEL_CONFIG = """\
minWorkers: 1
maxWorkers: 1
batchSize: 8
maxBatchDelay: 300
responseTimeout: 30
handler:
  max_texts_per_request: 8
  max_text_chars: 2000
  max_length: 32
  inference_batch_size: 4
"""


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
    store = REPO / "model_store"
    load_models = read_properties(REPO / "config.properties")["load_models"]
    missing = [m for m in load_models.split(",") if not (store / m).exists()]
    if missing:
        pytest.fail(f"{missing} not in model_store/: run scripts/prepare_models.sh first")
    server = start_server(tmp_path_factory.mktemp("ts-real"), store, load_models)
    yield server
    server.stop()


def pack_sentiment_versions(root: Path, versions: dict[str, tuple[int, int]]) -> Path:
    """``root/store`` with tiny ``sentiment-{version}.mar`` archives; ``versions`` maps each
    version to its weights' seed and its maxBatchDelay in ms."""
    store = root / "store"
    for version, (seed, batch_delay_ms) in versions.items():
        config = root / f"model-config-{version}.yaml"
        config.write_text(
            TEST_MODEL_CONFIG.replace("maxBatchDelay: 300", f"maxBatchDelay: {batch_delay_ms}")
        )
        model = build_tiny_classifier(root / version, seed=seed)
        build_mar(
            "sentiment",
            version,
            model,
            "sentiment",
            store,
            config=str(config),
            archive_name=f"sentiment-{version}",
        )
    return store


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
