"""Convert a Detoxify checkpoint into an HF-format multi-label classifier for build_mar.sh.

A Detoxify ``.ckpt`` (https://github.com/unitaryai/detoxify releases: original, unbiased,
multilingual, ...) is a dict with ``config`` (``arch.args``: model_type, model_name,
tokenizer_name, num_classes; ``dataset.args.classes``: the label names) and ``state_dict``.
``--base-dir`` is an HF directory of the checkpoint's base model (config.json and tokenizer,
e.g. ``bert-base-uncased`` for 'original', ``roberta-base`` for 'unbiased',
``xlm-roberta-base`` for 'multilingual') downloaded by a user with internet.

    review-analysis train convert-detoxify --checkpoint toxic_original-c1212f89.ckpt \\
        --base-dir bert-base-uncased --output artifacts/models/detoxify-original
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import transformers
from transformers import AutoTokenizer

# Detoxify renames the Jigsaw class names to its public label set.
LABEL_NAMES = {
    "toxic": "toxicity",
    "identity_hate": "identity_attack",
    "severe_toxic": "severe_toxicity",
}


def convert(checkpoint: Path, base_dir: Path, output: Path) -> list[str]:
    """Write ``output`` and return its labels in model output order."""
    loaded = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if "config" not in loaded or "state_dict" not in loaded:
        raise ValueError(f"{checkpoint} is not a Detoxify checkpoint (needs config, state_dict)")
    arch = loaded["config"]["arch"]["args"]
    labels = [LABEL_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
    if len(labels) != arch["num_classes"]:
        raise ValueError(f"{len(labels)} class names for {arch['num_classes']} outputs")

    model_class = getattr(transformers, arch["model_name"])
    config = model_class.config_class.from_pretrained(
        base_dir,
        local_files_only=True,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification",
    )
    model = model_class(config)
    state_dict = {k.removeprefix("model."): v for k, v in loaded["state_dict"].items()}
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    # Position-id buffers are not stored by every version; any real weight must match.
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")

    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    AutoTokenizer.from_pretrained(base_dir, local_files_only=True).save_pretrained(output)
    return labels


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--base-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    print(f"Wrote {args.output} with labels {convert(args.checkpoint, args.base_dir, args.output)}")
