"""Shared base for batched transformer text classifiers served by TorchServe.

TorchServe calls :meth:`handle` with one row per HTTP request of a dynamic batch and expects a
list of the same length back. Every request is parsed on its own; a bad one fails its own slot
with a 4xx JSON error while the texts of all good ones go through the model together:
length-sorted, split into micro-batches, padded only to the longest text of each micro-batch.

Nothing a request sends may take the worker down, so every request is costed before any
inference (:meth:`TextClassifierHandler.cost`): sentences it would echo back, and tokens the
model would process. A request over its own limits is refused with 413; requests that would
push the batch past its token budget (which must finish inside ``responseTimeout``, or
TorchServe kills the worker) get 503 with ``Retry-After``; an answer that would not fit in
TorchServe's ``max_response_size`` (over it, the frontend drops the worker) becomes a 413.

Subclasses implement :meth:`postprocess` (logits to result dictionaries), like the
``preprocess`` / ``_forward`` / ``postprocess`` split of Hugging Face pipelines.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from handlers.inputs import (
    Limits,
    ParsedRequest,
    RequestError,
    find_header,
    invalid,
    parse_request,
    receive_raw_bodies,
)
from handlers.metrics import ModelMetrics, model_identity
from handlers.onnx_model import ONNX_FILE, OnnxSequenceClassifier
from handlers.server_config import max_response_bytes

logger = logging.getLogger(__name__)

# Where build_mar.sh puts the HF-format model directory inside the archive.
MODEL_SUBDIR = "model"

DEFAULT_SETTINGS = {
    "max_texts_per_request": 64,
    "max_text_chars": 20_000,
    "max_length": 128,
    "inference_batch_size": 32,
    # Fixed cost of one forward pass, in tokens of compute: decides when padding a text into
    # a longer pass is cheaper than a pass of its own (plan_micro_batches).
    "pass_cost_tokens": 32,
    "threads": 0,
    # "dynamic-int8": int8 weights for every Linear layer, quantised at load (torch models).
    "quantize": "none",
    # What one request may ask for: sentences bound the size of the answer (each is echoed
    # with its scores); tokens bound the compute. A batch's tokens must finish well inside
    # responseTimeout on a slow, shared core (the derivation is in each model-config.yaml).
    "max_sentences_per_request": 2_000,
    "max_tokens_per_request": 8_192,
    "max_tokens_per_batch": 24_576,
    # However short, a model input costs a forward-pass row: e5-small ran 9-token pairs at the
    # pairs/s of 20-token ones, so each input counts at least this many tokens.
    "min_input_tokens": 16,
}

# Sent with a 503 for a request that did not fit in its batch: when to try again, in seconds.
RETRY_AFTER_SECONDS = "1"


@dataclass(frozen=True)
class Cost:
    """What answering one request takes: sentences in the answer, tokens through the model."""

    sentences: int
    tokens: int


def encode_json(answer: dict[str, Any]) -> bytes:
    """Compact JSON: TorchServe's own encoding of a dict is indented, a third larger."""
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class Encoded:
    """Tokenizer features of each text, unpadded, and whether each was cut to ``max_length``."""

    features: list[dict[str, list[int]]]
    truncated: list[bool]


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


def auto_threads(workers: int) -> int:
    """Intra-op threads per worker so that workers x threads never exceeds the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class TextClassifierHandler:
    """TorchServe handler for an HF-format sequence classifier shipped inside the archive."""

    def __init__(self) -> None:
        self.initialized = False
        self.metrics = ModelMetrics()

    # ----- loading -------------------------------------------------------------------------

    def initialize(self, context: Any) -> None:
        model_config = context.model_yaml_config or {}
        self.configure(model_config.get("handler", {}), workers=model_config.get("minWorkers", 1))
        self.model_info = model_identity(context)
        self.metrics = ModelMetrics(context.metrics, **self.model_info)
        self.load(Path(context.system_properties["model_dir"]) / MODEL_SUBDIR)
        receive_raw_bodies()
        logger.info("Loaded %s", self.model_info)
        self.initialized = True

    def configure(self, settings: dict[str, Any], workers: int = 1) -> None:
        """Apply the handler section of model-config.yaml: limits and thread count."""
        self.settings = {**DEFAULT_SETTINGS, **settings}
        self.workers = workers
        torch.set_num_threads(int(self.settings["threads"]) or auto_threads(workers))
        self.limits = Limits(
            max_texts=int(self.settings["max_texts_per_request"]),
            max_text_chars=int(self.settings["max_text_chars"]),
        )
        self.max_batch_tokens = int(self.settings["max_tokens_per_batch"])
        # A request over the batch budget could never be answered: refuse it up front.
        self.max_request_cost = Cost(
            sentences=int(self.settings["max_sentences_per_request"]),
            tokens=min(int(self.settings["max_tokens_per_request"]), self.max_batch_tokens),
        )
        self.max_response_bytes = max_response_bytes()
        self.min_input_tokens = int(self.settings["min_input_tokens"])

    def load(self, model_dir: Path) -> None:
        """Load tokenizer and model from a local HF-format directory, never from a hub."""
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        if (model_dir / ONNX_FILE).is_file():
            self.model = OnnxSequenceClassifier(model_dir, threads=torch.get_num_threads())
        else:
            # dtype "auto": the weights' own precision (bfloat16 from build_mar.sh --accelerate).
            self.model = AutoModelForSequenceClassification.from_pretrained(
                model_dir, local_files_only=True, dtype="auto"
            ).eval()
            if self.model.dtype == torch.bfloat16 and not native_bfloat16():
                logger.warning("This CPU has no bfloat16 instructions; computing in float32")
                self.model = self.model.float()
            if self.settings["quantize"] == "dynamic-int8":
                # Sentiment: 1.9x faster on CPU for < 1 point of accuracy; ABSA loses 10 points
                # of F1 (docs/BENCHMARKS.md).
                self.model = torch.ao.quantization.quantize_dynamic(
                    self.model, {torch.nn.Linear}, dtype=torch.qint8
                )
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.max_length = min(int(self.settings["max_length"]), self.tokenizer.model_max_length)

    # ----- TorchServe entry point ----------------------------------------------------------

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        started = time.perf_counter()
        answers: list[dict[str, Any] | RequestError | None] = [None] * len(data)
        admitted: dict[int, ParsedRequest] = {}
        batch_tokens = 0
        for idx, row in enumerate(data):
            try:
                request, cost = self.admit(row, find_header(context, idx, "Content-Type"))
            except RequestError as error:
                answers[idx] = error
                continue
            if admitted and batch_tokens + cost.tokens > self.max_batch_tokens:
                answers[idx] = RequestError(
                    503,
                    "BatchFull",
                    f"This batch already holds {batch_tokens} of the {self.max_batch_tokens} "
                    f"tokens a batch may take, and this request needs {cost.tokens}: retry.",
                )
                continue
            batch_tokens += cost.tokens
            admitted[idx] = request

        for idx, answer in zip(admitted, self.answer_all(list(admitted.values())), strict=True):
            answers[idx] = answer
        encoded = [self.encode(answer) for answer in answers]
        finals = [answer for answer, _ in encoded]
        self.metrics.record_batch(
            requests=len(data),
            texts=sum(len(r.texts) for r in admitted.values()),
            seconds=time.perf_counter() - started,
            errors=Counter(a.status for a in finals if isinstance(a, RequestError)),
        )
        answered = [a for a in finals if isinstance(a, dict)]
        self.record_results([r for a in answered for r in a.get("results", [a])])
        for idx, answer in enumerate(finals):
            context.set_response_content_type(idx, "application/json")
            context.set_response_header(idx, "X-Batch-Size", str(len(data)))
            if isinstance(answer, RequestError):
                # The standard phrase: the status line must never carry text from a request.
                context.set_response_status(answer.status, HTTPStatus(answer.status).phrase, idx)
                if answer.status == 503:
                    context.set_response_header(idx, "Retry-After", RETRY_AFTER_SECONDS)
        return [body for _, body in encoded]

    def admit(self, row: dict[str, Any], content_type: str | None) -> tuple[ParsedRequest, Cost]:
        """Parse one request and cost it; raises a 4xx RequestError for anything it sends."""
        try:
            request = parse_request(row, content_type, self.limits)
            cost = self.cost(request.texts)
        except RequestError:
            raise
        except Exception as error:
            # Nothing else is read yet: whatever fails here, the request's own input caused it.
            logger.exception("Could not read a request")
            raise invalid(f"The request could not be read: {error}") from None
        limit = self.max_request_cost
        if cost.sentences > limit.sentences:
            raise RequestError(
                413,
                "TooManySentences",
                f"The texts have {cost.sentences} sentences; the limit is {limit.sentences} "
                "per request.",
            )
        if cost.tokens > limit.tokens:
            raise RequestError(
                413,
                "TooMuchText",
                f"The request needs {cost.tokens} tokens of model input; the limit is "
                f"{limit.tokens} per request. Send fewer or shorter texts per request.",
            )
        return request, cost

    def encode(
        self, answer: dict[str, Any] | RequestError
    ) -> tuple[dict[str, Any] | RequestError, bytes]:
        """One slot's answer and its bytes; an answer too large to return becomes a 413."""
        if isinstance(answer, dict):
            body = encode_json(answer)
            if len(body) <= self.max_response_bytes:
                return answer, body
            answer = RequestError(
                413,
                "ResponseTooLarge",
                f"The answer would be {len(body)} bytes; the server returns at most "
                f"{self.max_response_bytes}. Send fewer texts per request.",
            )
        return answer, encode_json(answer.to_json())

    def answer_all(self, requests: list[ParsedRequest]) -> list[dict[str, Any] | RequestError]:
        """Answer every admitted request in one pass; if that pass fails, isolate the culprit."""
        texts = [text for r in requests for text in r.texts]
        try:
            results = iter(self.predict(texts))
            return [self.assemble(r, [next(results) for _ in r.texts]) for r in requests]
        except Exception:
            logger.exception("Batched inference failed; answering requests one by one")
            return [self.answer_alone(r) for r in requests]

    def answer_alone(self, request: ParsedRequest) -> dict[str, Any] | RequestError:
        try:
            return self.assemble(request, self.predict(request.texts))
        except Exception as error:
            logger.exception("Inference failed for one request")
            return RequestError(500, "InferenceError", f"Inference failed: {error}")

    def assemble(self, request: ParsedRequest, results: list[dict[str, Any]]) -> dict[str, Any]:
        results = [{**result, "model": self.model_info} for result in results]
        return {"results": results} if request.is_list else results[0]

    def record_results(self, results: list[dict[str, Any]]) -> None:
        """Count what the answers say (labels, flags, aspects); subclasses choose what."""

    # ----- inference pipeline ---------------------------------------------------------------

    def cost(self, texts: list[str]) -> Cost:
        """One model input per text; subclasses that split texts count their sentences."""
        return Cost(sentences=len(texts), tokens=self.input_tokens(self.text_tokens(texts)))

    def input_tokens(self, lengths: list[int], pair_lengths: tuple[int, ...] = ()) -> int:
        """Tokens the model processes for texts of these lengths (alone, or each paired with
        every second part of ``pair_lengths``), after truncation, counting each input at
        least ``min_input_tokens``."""
        specials = self.tokenizer.num_special_tokens_to_add(pair=bool(pair_lengths))
        return sum(
            max(min(n + pair + specials, self.max_length), self.min_input_tokens)
            for n in lengths
            for pair in pair_lengths or (0,)
        )

    def text_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text alone, before special tokens and truncation."""
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """Texts in, one result dictionary per text out, in the same order."""
        if not texts:
            return []
        encoded = self.preprocess(texts)
        results = self.postprocess(self._forward(encoded))
        for result, truncated in zip(results, encoded.truncated, strict=True):
            result["truncated"] = truncated
        return results

    def preprocess(self, texts: list[str], pairs: list[str] | None = None) -> Encoded:
        """Tokenize texts (or sentence pairs, cutting only the first part) without padding."""
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
        return Encoded(features, truncated)

    def _forward(self, encoded: Encoded) -> torch.Tensor:
        """Logits for every text; micro-batches of similar length keep padding small."""
        lengths = [len(row["input_ids"]) for row in encoded.features]
        logits = torch.empty(len(lengths), len(self.labels))
        with torch.inference_mode():
            for index in plan_micro_batches(
                lengths,
                max_size=int(self.settings["inference_batch_size"]),
                pass_cost_tokens=int(self.settings["pass_cost_tokens"]),
            ):
                batch = self.tokenizer.pad(
                    [encoded.features[i] for i in index], return_tensors="pt"
                )
                logits[index] = self.model(**batch).logits.float()
        return logits

    def postprocess(self, logits: torch.Tensor) -> list[dict[str, Any]]:
        raise NotImplementedError
