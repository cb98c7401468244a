"""Accelerated copies of an HF sequence classifier: bfloat16 weights, or ONNX Runtime (fp32,
or int8 dynamic quantisation).

Writes an HF-format directory that the handlers serve unchanged: ``bf16`` keeps torch with
bfloat16 weights (fast where the CPU has AMX or AVX512-BF16; loaded as float32 elsewhere),
``onnx``/``onnx-int8`` put a ``model.onnx`` in place of the weights
(``handlers/onnx_model.py``). ``build_mar.sh --accelerate ENGINE`` calls this;
``src/review_analysis/bench/accelerate.py`` measures speed and accuracy against eager fp32.

    review-analysis train accelerate --model-dir DIR --output DIR --engine onnx-int8
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from handlers.onnx_model import ONNX_FILE

ENGINES = ("bf16", "onnx", "onnx-int8")
WEIGHT_FILES = ("*.safetensors", "*.bin", ONNX_FILE)
# Two texts of different length, so the exported graph sees real padding and masking.
EXPORT_SAMPLE = ["Great food.", "The service was slow, but the pasta made up for the long wait."]


def export(model_dir: Path, output: Path, engine: str) -> Path:
    """``model_dir`` (HF format) -> ``output``, the same model for ``engine``."""
    ignored = shutil.ignore_patterns(*WEIGHT_FILES)
    shutil.copytree(model_dir, output, ignore=ignored, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, local_files_only=True
    ).eval()
    if engine == "bf16":
        model.to(torch.bfloat16).save_pretrained(output)
        return output
    sample = dict(tokenizer(EXPORT_SAMPLE, padding=True, return_tensors="pt"))
    # The TorchScript exporter bakes the sample's shapes into the attention mask (wrong
    # scores for other lengths); torch.export keeps batch and sequence symbolic.
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    program = torch.onnx.export(
        model,
        (),
        kwargs=sample,
        input_names=list(sample),
        output_names=["logits"],
        dynamic_shapes={name: {0: batch, 1: sequence} for name in sample},
        dynamo=True,
    )
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / ONNX_FILE
        program.save(str(fp32))
        check_outputs(model, fp32, tokenizer)
        if engine == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(fp32, output / ONNX_FILE, weight_type=QuantType.QInt8)
        else:
            shutil.copy(fp32, output / ONNX_FILE)
    return output


def check_outputs(model: torch.nn.Module, onnx_file: Path, tokenizer) -> None:
    """The exported graph must give torch's logits for other batch sizes and lengths too."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for texts in (EXPORT_SAMPLE[:1], [*EXPORT_SAMPLE, " ".join(EXPORT_SAMPLE * 5)]):
        inputs = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            expected = model(**inputs).logits
        (logits,) = session.run(["logits"], {name: value.numpy() for name, value in inputs.items()})
        difference = (torch.from_numpy(logits) - expected).abs().max().item()
        if difference > 1e-3:
            raise RuntimeError(f"ONNX export differs from torch by {difference:.3g} on {texts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--engine", choices=ENGINES, required=True)
    args = parser.parse_args()
    print(export(args.model_dir, args.output, args.engine))


if __name__ == "__main__":
    main()
