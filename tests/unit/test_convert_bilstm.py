"""The converted Jigsaw BiLSTM computes what the Keras model computes.

The reference is the Keras math written out in NumPy straight from the package's own files
(``model.weights.h5`` and the pickled Keras Tokenizer): Keras' word splitting, ``pad_sequences``
(zeros in front, longer texts keep their last ids), the LSTM cell (gates i, f, c, o; sigmoid
and tanh), the backward direction, global max-pool and the two Dense layers.
"""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest

from handlers.backends import load_backend
from handlers.base import DEFAULT_SETTINGS
from handlers.bilstm_model import BiLstmTextModel
from review_analysis.training import convert_bilstm
from tests.support.toxicity_labels import DETOXIFY_LABELS

pytestmark = pytest.mark.unit

TEXTS = [
    "I will find you and make you regret this review.",
    "Great burger, friendly staff, fair prices!",
    "you are a STUPID idiot and your restaurant is a joke",
    "Go back to where you came from, nobody wants your food here.",
    "",
    "!!!???",
    "Zxqvbn flurbo glorpish wibblewobble.",  # no known words: an all-padding window
    'Tabs\tand\nnewlines, dashes-between words; quotes "here" and émojis-free ünïcode.',
    # Longer than the 100-word window: only the last 100 known words count.
    " ".join(["The soup was cold and the waiter ignored us for an hour."] * 12)
    + " Honestly you people are pathetic, I hope someone burns this dump down.",
    "the service here was slow and the room smelled of smoke " * 15
    + "kill yourself you worthless moron",
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    output = tmp_path_factory.mktemp("bilstm")
    labels = convert_bilstm.convert(output)
    return output, labels


def keras_ids(text: str, tokenizer: dict) -> list[int]:
    """Keras' legacy ``text_to_word_sequence`` + ``texts_to_sequences`` (no OOV token)."""
    if tokenizer["lower"]:
        text = text.lower()
    for character in tokenizer["filters"]:
        text = text.replace(character, tokenizer["split"])
    words = [word for word in text.split(tokenizer["split"]) if word]
    index, limit = tokenizer["word_index"], tokenizer["num_words"]
    return [index[w] for w in words if w in index and index[w] < limit]


def pad_sequences(ids: list[int], maxlen: int) -> np.ndarray:
    row = np.zeros(maxlen, dtype=np.int64)
    kept = ids[-maxlen:]
    if kept:
        row[maxlen - len(kept) :] = kept
    return row


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def lstm_states(inputs: np.ndarray, kernel, recurrent, bias) -> np.ndarray:
    """A Keras LSTM with return_sequences over (time, features) in float64."""
    units = recurrent.shape[0]
    h, c = np.zeros(units), np.zeros(units)
    states = []
    for x in inputs:
        z = x @ kernel + h @ recurrent + bias
        i, f, g, o = (z[k * units : (k + 1) * units] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        states.append(h)
    return np.array(states)


def keras_probabilities(text: str, weights: h5py.File, tokenizer: dict) -> np.ndarray:
    def var(path: str, index: int) -> np.ndarray:
        return np.asarray(weights[f"layers/{path}/vars/{index}"], dtype=np.float64)

    embedded = var("embedding", 0)[pad_sequences(keras_ids(text, tokenizer), 100)]
    cell = "bidirectional/{}_layer/cell"
    forward = lstm_states(embedded, *(var(cell.format("forward"), k) for k in range(3)))
    backward = lstm_states(embedded[::-1], *(var(cell.format("backward"), k) for k in range(3)))
    pooled = np.concatenate([forward.max(axis=0), backward.max(axis=0)])
    hidden = np.maximum(pooled @ var("dense", 0) + var("dense", 1), 0.0)
    return sigmoid(hidden @ var("dense_1", 0) + var("dense_1", 1))


def test_converted_model_equals_the_keras_math(converted):
    output, labels = converted
    assert labels == DETOXIFY_LABELS
    source = convert_bilstm.package_model_dir()
    tokenizer = convert_bilstm.read_tokenizer(source / "tokenizer.pickle")
    model = BiLstmTextModel(output)
    windows, cut = model.windows(TEXTS)
    served = model.probabilities(windows)
    with h5py.File(source / "model.weights.h5", "r") as weights:
        expected = np.array([keras_probabilities(t, weights, tokenizer) for t in TEXTS])
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
    assert cut == [len(keras_ids(t, tokenizer)) > 100 for t in TEXTS]
    assert cut[-2:] == [True, True] and not any(cut[:-2])
    # The texts are varied enough that the check means something: the scores spread.
    assert expected[:, 0].min() < 0.1 and expected[:, 0].max() > 0.9


def test_the_model_directory_needs_no_pickle_and_no_tensorflow(converted):
    output = converted[0]
    assert sorted(p.name for p in output.iterdir()) == [
        "config.json",
        "model.safetensors",
        "vocab.json",
    ]
    config = json.loads((output / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["source"] == "toxic-comment-classifier==0.3.0"
    vocab = json.loads((output / "vocab.json").read_text())
    assert len(vocab) == 19_999 and max(vocab.values()) == 19_999


def test_served_through_the_backend_as_probabilities(converted):
    output, labels = converted
    backend = load_backend(output, dict(DEFAULT_SETTINGS))
    assert backend.labels == labels and backend.outputs == "probabilities"
    encoded = backend.encode(TEXTS[:3])
    scores = backend.scores(encoded)
    assert scores.shape == (3, 6)
    direct = BiLstmTextModel(output)
    np.testing.assert_allclose(scores, direct.probabilities(direct.windows(TEXTS[:3])[0]))
    with pytest.raises(ValueError, match="sentence pairs"):
        backend.encode(["a"], pairs=["b"])


def test_the_tokenizer_pickle_admits_nothing_but_a_tokenizer(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("unpickled code ran",))

    path = tmp_path / "tokenizer.pickle"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(pickle.UnpicklingError, match="not part of a Keras Tokenizer"):
        convert_bilstm.read_tokenizer(path)


def test_window_keeps_the_last_words(converted):
    model = BiLstmTextModel(converted[0])
    text = " ".join(["the"] * 150) + " idiot"
    windows, cut = model.windows([text])
    assert cut == [True]
    assert windows[0, -1] == model.tokenizer.vocab["idiot"]
