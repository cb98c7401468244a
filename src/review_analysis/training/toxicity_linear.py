"""Write alt-profanity-check's one-label toxicity model as a model directory (the fast option).

The default toxicity model is the six-label transformer of ``toxicity.py``; this one serves
36x the comments per second at a far lower AUC (docs/MODELS.md, docs/BENCHMARKS.md), and
``toxicity.py`` uses it as a teacher. alt-profanity-check (PyPI, MIT) ships a calibrated
linear SVM over TF-IDF features, trained by its author on about 200k human-labelled comments.
It gives one probability, "offensive or not", which we serve as the single label
``toxicity``: it has no severe_toxicity, obscene, threat, insult or identity_attack scores,
and we do not invent them.

    review-analysis train toxicity-linear --output artifacts/models/toxicity-linear
"""

from __future__ import annotations

import argparse
import json
import shutil
from importlib import metadata, resources
from pathlib import Path

from handlers.linear_model import BACKEND
from review_analysis.paths import MODELS


def prepare(output: Path) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    data = resources.files("profanity_check") / "data"
    for name in ("model.joblib", "vectorizer.joblib"):
        with resources.as_file(data / name) as source:
            shutil.copyfile(source, output / name)
    config = {
        "backend": BACKEND,
        "id2label": {"0": "toxicity"},
        "problem_type": "multi_label_classification",
        "source": f"alt-profanity-check=={metadata.version('alt-profanity-check')}",
    }
    (output / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return output


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=MODELS / "toxicity-linear")
    print(f"Wrote {prepare(parser.parse_args().output)}")
