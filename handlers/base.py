"""The handler contract: request handling for every task, and the single-model classifier.

TorchServe calls :meth:`RequestHandler.handle` with one row per HTTP request of a dynamic
batch and expects a list of the same length back. Every request is parsed on its own; a bad
one fails its own slot with a 4xx JSON error while the texts of all good ones go through the
model together: length-sorted, split into micro-batches, padded only to the longest input of
each micro-batch (handlers/backends.py).

Nothing a request sends may take the worker down, so every request is fanned out into model
inputs and costed before any inference (:meth:`RequestHandler.admit`): sentences it would echo
back, and tokens the model would process. A request over its own limits is refused with 413;
requests that would push the batch past its token budget (which must finish inside
``responseTimeout``, or TorchServe kills the worker) get 503 with ``Retry-After``; an answer
that would not fit in TorchServe's ``max_response_size`` (over it, the frontend drops the
worker) becomes a 413. The fanned-out inputs are kept with the admitted request, so each text
is split and tokenized once.

A task is a :class:`TextClassifierHandler` that says, like the preprocess / postprocess
split of Hugging Face's ChunkPipeline, how one text fans out into model inputs
(:meth:`~TextClassifierHandler.split` into units, each paired with every one of
:attr:`~TextClassifierHandler.pairs`) and how the probabilities of its units fold back into
its answer (:meth:`~TextClassifierHandler.fold`); the base adds ``truncated``. A handler that
combines models (review) is a :class:`RequestHandler` whose parts are task handlers.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch

from handlers.backends import Backend, Encoded, load_backend
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
from handlers.responses import Response, encode_json, send
from handlers.server_config import max_response_bytes

logger = logging.getLogger(__name__)

# Where build_mar.sh puts the HF-format model directory inside the archive.
MODEL_SUBDIR = "model"

# The handler settings of every task; a model-config.yaml's "handler" section overrides them
# and adds the task's own keys. The compute limits are the sentiment model's: each other
# model-config.yaml derives its own where its model is slower.
DEFAULT_SETTINGS: dict[str, Any] = {
    # Texts in one request's "texts"; more is a 413 TooManyTexts.
    "max_texts_per_request": 64,
    # Characters in one text; longer is a 413 TextTooLong.
    "max_text_chars": 20_000,
    # Tokens of one model input; longer inputs are cut and answered with "truncated": true.
    "max_length": 128,
    # Model inputs in one forward pass, at most.
    "inference_batch_size": 32,
    # Fixed cost of one forward pass, in tokens of compute: decides when padding a text into
    # a longer pass is cheaper than a pass of its own (plan_micro_batches).
    "pass_cost_tokens": 32,
    # Intra-op threads per worker; 0 = cores / workers (auto_threads).
    "threads": 0,
    # "dynamic-int8": int8 weights for every Linear layer, quantised at load (torch models).
    "quantize": "none",
    # What one request may ask for: sentences bound the size of the answer (each is echoed
    # with its scores: 2,000 bound an answer to about 0.5 MB plus the texts themselves, far
    # below max_response_size); tokens bound the compute. A batch's tokens must finish well
    # inside responseTimeout on a slow, shared core (the derivation is in each
    # model-config.yaml). max_tokens_per_request: 64 texts of 128 tokens, every request
    # within the limits above.
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


class Work(Protocol):
    """One request's texts fanned out into model inputs, kept from admission to inference."""

    @property
    def cost(self) -> Cost: ...


@dataclass(frozen=True)
class FanOut:
    """The texts of one request (or a batch) as one model's inputs.

    ``units`` holds, per text, what its answer echoes (the text itself, or its sentences);
    ``encoded`` the model inputs of every unit in order, one per unit or one per pair.
    """

    units: list[list[str]]
    encoded: Encoded

    @property
    def cost(self) -> Cost:
        return Cost(sentences=sum(len(units) for units in self.units), tokens=self.encoded.tokens)

    @classmethod
    def join(cls, fan_outs: list[FanOut]) -> FanOut:
        return cls(
            [units for f in fan_outs for units in f.units],
            Encoded.join([f.encoded for f in fan_outs]),
        )


@dataclass(frozen=True)
class PartsWork:
    """One request fanned out for each model of a handler that combines them (review)."""

    parts: dict[str, FanOut]

    @property
    def cost(self) -> Cost:
        """Tokens of every part. Sentences as a user counts them: those of the part that
        splits finest (sentiment and toxicity split alike); each part echoes them, which at
        2,000 sentences stays far below max_response_size, and that is checked anyway."""
        costs = [fan_out.cost for fan_out in self.parts.values()]
        return Cost(max(c.sentences for c in costs), sum(c.tokens for c in costs))


def auto_threads(workers: int) -> int:
    """Intra-op threads per worker so that workers x threads never exceeds the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class RequestHandler:
    """TorchServe entry point: parsing, admission, batching, error slots, metrics.

    Subclasses implement :meth:`load`, :meth:`prepare` (a request's texts to a :class:`Work`)
    and :meth:`infer` (the works of a batch to one result per text).
    """

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

    def load(self, model_dir: Path) -> None:
        """Load the model(s) from the archive's model directory."""
        raise NotImplementedError

    # ----- what a task provides ------------------------------------------------------------

    def prepare(self, texts: list[str]) -> Work:
        """Fan one request's texts out into model inputs, costed."""
        raise NotImplementedError

    def infer(self, works: list[Work]) -> list[dict[str, Any]]:
        """One result per text of every work, in order; all works share the forward passes."""
        raise NotImplementedError

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """Texts in, one result per text out, for benchmarks and evaluation: no limit applies
        but the sentences of one call (max_sentences_per_request), counted before tokenizing."""
        return self.infer([self.prepare(texts)]) if texts else []

    def record_results(self, results: list[dict[str, Any]]) -> None:
        """Count what the answers say (labels, flags, aspects); subclasses choose what."""

    # ----- TorchServe entry point ----------------------------------------------------------

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        started = time.perf_counter()
        answers: list[dict[str, Any] | RequestError | None] = [None] * len(data)
        admitted: dict[int, tuple[ParsedRequest, Work]] = {}
        batch_tokens = 0
        for idx, row in enumerate(data):
            try:
                request, work = self.admit(row, find_header(context, idx, "Content-Type"))
            except RequestError as error:
                answers[idx] = error
                continue
            tokens = work.cost.tokens
            if admitted and batch_tokens + tokens > self.max_batch_tokens:
                answers[idx] = RequestError(
                    503,
                    "BatchFull",
                    f"This batch already holds {batch_tokens} of the {self.max_batch_tokens} "
                    f"tokens a batch may take, and this request needs {tokens}: retry.",
                )
                continue
            batch_tokens += tokens
            admitted[idx] = (request, work)

        for idx, answer in zip(admitted, self.answer_all(list(admitted.values())), strict=True):
            answers[idx] = answer
        encoded = [self.encode(answer) for answer in answers]
        finals = [answer for answer, _ in encoded]
        self.metrics.record_batch(
            requests=len(data),
            texts=sum(len(request.texts) for request, _ in admitted.values()),
            seconds=time.perf_counter() - started,
            errors=Counter(a.status for a in finals if isinstance(a, RequestError)),
        )
        answered = [a for a in finals if isinstance(a, dict)]
        self.record_results([r for a in answered for r in a.get("results", [a])])
        return send(context, [response for _, response in encoded])

    def admit(self, row: dict[str, Any], content_type: str | None) -> tuple[ParsedRequest, Work]:
        """Parse one request, fan it out and cost it; raises a 4xx RequestError for anything
        it sends."""
        try:
            request = parse_request(row, content_type, self.limits)
            work = self.prepare(request.texts)
        except RequestError:
            raise
        except Exception as error:
            # Nothing else is read yet: whatever fails here, the request's own input caused it.
            logger.exception("Could not read a request")
            raise invalid(f"The request could not be read: {error}") from None
        cost, limit = work.cost, self.max_request_cost
        self.check_sentences(cost.sentences)
        if cost.tokens > limit.tokens:
            raise RequestError(
                413,
                "TooMuchText",
                f"The request needs {cost.tokens} tokens of model input; the limit is "
                f"{limit.tokens} per request. Send fewer or shorter texts per request.",
            )
        return request, work

    def check_sentences(self, sentences: int) -> None:
        """Refuse a request whose answer would echo more sentences than it may."""
        limit = self.max_request_cost.sentences
        if sentences > limit:
            raise RequestError(
                413,
                "TooManySentences",
                f"The texts have {sentences} sentences; the limit is {limit} per request.",
            )

    def encode(
        self, answer: dict[str, Any] | RequestError
    ) -> tuple[dict[str, Any] | RequestError, Response]:
        """One slot's answer and its response; an answer too large to return becomes a 413."""
        if isinstance(answer, dict):
            body = encode_json(answer)
            if len(body) <= self.max_response_bytes:
                return answer, Response(200, body)
            answer = RequestError(
                413,
                "ResponseTooLarge",
                f"The answer would be {len(body)} bytes; the server returns at most "
                f"{self.max_response_bytes}. Send fewer texts per request.",
            )
        if answer.status == 503:
            return answer, Response.of_error(answer, **{"Retry-After": RETRY_AFTER_SECONDS})
        return answer, Response.of_error(answer)

    def answer_all(
        self, admitted: list[tuple[ParsedRequest, Work]]
    ) -> list[dict[str, Any] | RequestError]:
        """Answer every admitted request in one pass; if that pass fails, isolate the culprit."""
        if not admitted:
            return []
        try:
            results = iter(self.infer([work for _, work in admitted]))
            return [self.assemble(r, [next(results) for _ in r.texts]) for r, _ in admitted]
        except Exception:
            logger.exception("Batched inference failed; answering requests one by one")
            return [self.answer_alone(request, work) for request, work in admitted]

    def answer_alone(self, request: ParsedRequest, work: Work) -> dict[str, Any] | RequestError:
        try:
            return self.assemble(request, self.infer([work]))
        except Exception as error:
            logger.exception("Inference failed for one request")
            return RequestError(500, "InferenceError", f"Inference failed: {error}")

    def assemble(self, request: ParsedRequest, results: list[dict[str, Any]]) -> dict[str, Any]:
        results = [{**result, "model": self.model_info} for result in results]
        return {"results": results} if request.is_list else results[0]


# What turns a backend's logits into probabilities: one label of many, or independent labels.
ACTIVATIONS = {
    "softmax": lambda logits: torch.softmax(logits, dim=-1),
    "sigmoid": torch.sigmoid,
}


class TextClassifierHandler(RequestHandler):
    """A task on one sequence classifier (handlers/backends.py picks torch, ONNX or TF-IDF).

    A task declares how one text fans out into model inputs and how they fold back:

    * :meth:`split`: the units of a text that its answer echoes (default: the text itself);
    * :attr:`pairs`: second parts; if any, every unit is paired with each of them;
    * :attr:`activation`: how logits become probabilities;
    * :meth:`fold`: the probabilities of a text's units (``(units, labels)``, or
      ``(units, pairs, labels)`` with pairs) to its answer, which gets ``truncated`` added;
    * :meth:`setup`: reads the task's own settings once the model is loaded.
    """

    activation: ClassVar[Literal["softmax", "sigmoid"]] = "softmax"
    pairs: tuple[str, ...] = ()

    def load(self, model_dir: Path) -> None:
        self.backend: Backend = load_backend(model_dir, self.settings)
        self.labels = self.backend.labels
        self.setup()
        if self.pairs:
            try:
                self.backend.encode(["."] * len(self.pairs), list(self.pairs))
            except Exception as error:
                # E.g. a max_length that leaves no room for a sentence beside a second part:
                # every request would fail, so the worker must not start.
                raise ValueError(f"The model cannot take this task's pairs: {error}") from error

    def setup(self) -> None:
        """Read the task's own settings; ``self.labels`` and ``self.backend`` are set."""

    def split(self, text: str) -> list[str]:
        """The units of one text: each becomes a model input (or one per pair)."""
        return [text]

    def fold(self, units: list[str], probabilities: np.ndarray) -> dict[str, Any]:
        """One text's answer from the probabilities of its units."""
        raise NotImplementedError

    def label_scores(self, probabilities: np.ndarray) -> dict[str, float]:
        """Probabilities of one unit (or text) by label, rounded as every answer shows them."""
        return {
            label: round(float(p), 6) for label, p in zip(self.labels, probabilities, strict=True)
        }

    def prepare(self, texts: list[str]) -> FanOut:
        units = [self.split(text) for text in texts]
        flat = [unit for group in units for unit in group]
        # Before tokenizing: "A. " x 6,000 is 6,000 inputs to tokenize, however few tokens.
        self.check_sentences(len(flat))
        if self.pairs:
            encoded = self.backend.encode(
                [unit for unit in flat for _ in self.pairs],
                [pair for _ in flat for pair in self.pairs],
            )
        else:
            encoded = self.backend.encode(flat)
        return FanOut(units, encoded)

    def infer(self, works: list[FanOut]) -> list[dict[str, Any]]:
        batch = FanOut.join(works)
        scores = self.backend.scores(batch.encoded)
        if self.backend.outputs == "logits":
            scores = ACTIVATIONS[self.activation](torch.from_numpy(scores)).numpy()
        width = len(self.pairs) or 1
        if self.pairs:
            scores = scores.reshape(-1, width, scores.shape[-1])
        # A unit is truncated if any of its inputs was cut.
        truncated = np.array(batch.encoded.truncated, dtype=bool).reshape(-1, width).any(axis=1)
        results, start = [], 0
        for units in batch.units:
            end = start + len(units)
            result = self.fold(units, scores[start:end])
            result["truncated"] = bool(truncated[start:end].any())
            results.append(result)
            start = end
        return results
