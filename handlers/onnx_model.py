"""ONNX Runtime backend: a ``model.onnx`` beside the HF config, called like the torch model.

``build_mar.sh --accelerate onnx|onnx-int8`` packs such a directory
(``src/review_analysis/training/accelerate.py`` exports it). The transformer backend
(handlers/backends.py) only ever calls ``model(**batch).logits`` and reads ``model.config``,
so this class offers exactly that and tokenization, batching and costing do not change.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig
from transformers.modeling_outputs import SequenceClassifierOutput

ONNX_FILE = "model.onnx"


class OnnxSequenceClassifier:
    """An ONNX sequence classifier with the calling convention of its HF original."""

    def __init__(self, model_dir: Path, threads: int) -> None:
        # Imported here: only archives built with --accelerate need onnxruntime.
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle ORT threads spin by default: they would burn the cores that other models'
        # workers on the same machine need between requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(model_dir / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [graph_input.name for graph_input in self.session.get_inputs()]
        self.config = AutoConfig.from_pretrained(model_dir, local_files_only=True)

    def __call__(self, **inputs: torch.Tensor) -> SequenceClassifierOutput:
        feed = {name: inputs[name].numpy() for name in self.input_names}
        (logits,) = self.session.run(["logits"], feed)
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))
