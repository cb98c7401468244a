"""Model backends: what turns model inputs into scores, behind one small interface.

A backend owns everything model-specific: the tokenizer, how many tokens of compute an input
costs, whether it had to be cut to ``max_length``, and how inputs are grouped into forward
passes. Handlers see only :class:`Backend`: ``encode`` once per request (the cost is known
before any inference), ``scores`` once per batch. :func:`load_backend` picks the backend from
the model directory:

* ``config.json`` says ``"backend": "tfidf-linear"``: the TF-IDF + linear model of
  ``linear_model.py`` (probabilities of one label; no tokens, nothing is ever cut);
* ``"backend": "keras-bilstm"``: the word-level BiLSTM of ``bilstm_model.py``
  (probabilities; a text longer than its word window keeps its last words);
* a ``model.onnx`` beside the config: ONNX Runtime (``onnx_model.py``), logits;
* otherwise the HF torch model, in its stored precision (bfloat16 only where the CPU computes
  it natively) and optionally with int8 dynamic quantisation, logits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from handlers.bilstm_model import BACKEND as BILSTM_BACKEND
from handlers.bilstm_model import BiLstmTextModel
from handlers.linear_model import BACKEND as LINEAR_BACKEND
from handlers.linear_model import LinearTextModel
from handlers.onnx_model import ONNX_FILE, OnnxSequenceClassifier

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """Model inputs as a backend runs them, and what they cost.

    ``inputs`` are the backend's own (unpadded tokenizer features, or the texts themselves);
    ``truncated`` says for each whether it was cut to ``max_length``; ``tokens`` is the compute
    they take, in tokens through the model.
    """

    inputs: list[Any]
    truncated: list[bool]
    tokens: int

    @classmethod
    def join(cls, parts: list[Encoded]) -> Encoded:
        """The inputs of several requests as one batch, in order."""
        return cls(
            [row for part in parts for row in part.inputs],
            [flag for part in parts for flag in part.truncated],
            sum(part.tokens for part in parts),
        )


class Backend(Protocol):
    """A sequence classifier as handlers use it."""

    labels: list[str]
    # "logits" for the handler's activation to turn into probabilities, or "probabilities".
    outputs: Literal["logits", "probabilities"]
    # The model directory's config.json: a task may check what the model was trained for.
    config: dict[str, Any]

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> Encoded:
        """Inputs for texts, or for (text, pair) sentence pairs where only texts may be cut."""
        ...

    def scores(self, encoded: Encoded) -> np.ndarray:
        """Scores of shape (inputs, labels), in input order."""
        ...


def load_backend(model_dir: Path, settings: dict[str, Any]) -> Backend:
    """The backend for a model directory (see the module docstring), never from a hub."""
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("backend") == LINEAR_BACKEND:
        return LinearBackend(model_dir, config)
    if config.get("backend") == BILSTM_BACKEND:
        return BiLstmBackend(model_dir, config)
    return TransformerBackend(model_dir, config, settings)


def labels_of(config: dict[str, Any]) -> list[str]:
    """The labels of a non-transformer model directory's config.json, in output order."""
    return [config["id2label"][str(i)] for i in range(len(config["id2label"]))]


class LinearBackend:
    """A TF-IDF + linear model: one label, microseconds a sentence, so it costs no tokens."""

    outputs = "probabilities"

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        self.model = LinearTextModel(model_dir)
        self.config = config
        self.labels = labels_of(config)

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> Encoded:
        if pairs is not None:
            raise ValueError("A TF-IDF model scores single texts, not sentence pairs.")
        return Encoded(list(texts), [False] * len(texts), tokens=0)

    def scores(self, encoded: Encoded) -> np.ndarray:
        return self.model.positive_probability(encoded.inputs)[:, None]


class BiLstmBackend:
    """A converted Keras BiLSTM: a fixed window of word ids through a small LSTM, so like
    the linear model it costs no tokens of the transformer budget."""

    outputs = "probabilities"

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        self.model = BiLstmTextModel(model_dir)
        self.config = config
        self.labels = labels_of(config)

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> Encoded:
        if pairs is not None:
            raise ValueError("A BiLSTM model scores single texts, not sentence pairs.")
        windows, cut = self.model.windows(texts)
        return Encoded(list(windows), cut, tokens=0)

    def scores(self, encoded: Encoded) -> np.ndarray:
        return self.model.probabilities(np.stack(encoded.inputs))


class TransformerBackend:
    """An HF-format sequence classifier: torch, or ONNX Runtime where ``model.onnx`` exists.

    ``settings`` is the handler's own dictionary, read at every call: a benchmark may change
    ``inference_batch_size`` or ``pass_cost_tokens`` on a loaded model.
    """

    outputs = "logits"

    def __init__(self, model_dir: Path, config: dict[str, Any], settings: dict[str, Any]):
        self.settings = settings
        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = load_model(model_dir, settings["quantize"])
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.max_length = min(int(settings["max_length"]), self.tokenizer.model_max_length)

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> Encoded:
        """Tokenize without padding, cutting only the first part of a pair.

        However short, an input costs a forward-pass row: it counts at least
        ``min_input_tokens`` tokens.
        """
        encoding = self.tokenizer(
            texts,
            pairs,
            truncation="only_first" if pairs else True,
            max_length=self.max_length,
            return_overflowing_tokens=True,
        )
        # Overflow rows repeat their text's index; the first row of each text is what we keep.
        features: list[dict[str, list[int]]] = [{} for _ in texts]
        truncated = [False] * len(texts)
        names = [name for name in encoding if name != "overflow_to_sample_mapping"]
        for row, index in enumerate(encoding["overflow_to_sample_mapping"]):
            if features[index]:
                truncated[index] = True
            else:
                features[index] = {name: encoding[name][row] for name in names}
        floor = int(self.settings["min_input_tokens"])
        tokens = sum(max(len(row["input_ids"]), floor) for row in features)
        return Encoded(features, truncated, tokens)

    def scores(self, encoded: Encoded) -> np.ndarray:
        """Logits; micro-batches of similar length keep padding small."""
        lengths = [len(row["input_ids"]) for row in encoded.inputs]
        logits = torch.empty(len(lengths), len(self.labels))
        with torch.inference_mode():
            for index in plan_micro_batches(
                lengths,
                max_size=int(self.settings["inference_batch_size"]),
                pass_cost_tokens=int(self.settings["pass_cost_tokens"]),
            ):
                batch = self.tokenizer.pad([encoded.inputs[i] for i in index], return_tensors="pt")
                logits[index] = self.model(**batch).logits.float()
        return logits.numpy()


def load_model(model_dir: Path, quantize: str) -> Any:
    """The ONNX or torch classifier of ``model_dir``, ready for inference."""
    if (model_dir / ONNX_FILE).is_file():
        return OnnxSequenceClassifier(model_dir, threads=torch.get_num_threads())
    # dtype "auto": the weights' own precision (bfloat16 from build_mar.sh --accelerate).
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, local_files_only=True, dtype="auto"
    ).eval()
    if model.dtype == torch.bfloat16 and not native_bfloat16():
        logger.warning("This CPU has no bfloat16 instructions; computing in float32")
        model = model.float()
    if quantize == "dynamic-int8":
        # Sentiment: 1.9x faster on CPU for < 1 point of accuracy; ABSA loses 10 points of F1
        # (docs/BENCHMARKS.md).
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def plan_micro_batches(lengths: list[int], max_size: int, pass_cost_tokens: int) -> list[list[int]]:
    """Indices grouped into forward passes of similar length, shortest first.

    In length order, a text joins the current pass unless the padding it adds there (every
    text already in it grows to the new length) costs more than a pass of its own, whose
    fixed cost is ``pass_cost_tokens`` tokens' worth of compute; a pass holds at most
    ``max_size`` texts.
    """
    passes: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        current = passes[-1] if passes else []
        added_padding = len(current) * (lengths[index] - lengths[current[-1]]) if current else 0
        if current and len(current) < max_size and added_padding <= pass_cost_tokens:
            current.append(index)
        else:
            passes.append([index])
    return passes


def native_bfloat16() -> bool:
    """Whether the CPU computes bfloat16 in hardware (AMX or AVX512-BF16); elsewhere bfloat16
    is emulated and slower than float32."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)
