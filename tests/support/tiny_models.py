"""Small random-weight HF models built in a second, for tests that check the serving contract."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import BertWordPieceTokenizer
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from review_analysis.archives import build_mar

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

CORPUS = [
    "I loved this place, the food was great.",
    "Terrible service, cold food, never again.",
    "The staff were friendly and the prices fair.",
    "Das Essen war einfach schlecht, der Service aber freundlich.",
]


def build_tiny_classifier(
    output: Path, labels: tuple[str, ...] = ("negative", "positive"), seed: int = 0, **config
) -> Path:
    """An HF-format BERT sequence classifier with a WordPiece tokenizer trained on CORPUS."""
    output.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(CORPUS, vocab_size=200, min_frequency=1)
    wordpiece.save_model(str(output))
    tokenizer = BertTokenizer(vocab=str(output / "vocab.txt"), model_max_length=64)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            **config,
        )
    )
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output


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
