"""The common tutorial design, kept as the benchmark's baseline: a Flask app, one text per
request, one process, Flask's own server (``app.run()``, threaded as Flask runs it by default).

For sentiment it calls a ``transformers`` pipeline, as the tutorials do. The other models
have no pipeline (toxicity is a scikit-learn model; review runs two models; ABSA builds
sentence pairs), so the app calls the model's own handler code on one text at a time: the
same work per text as the served model, without batching or TorchServe.

    python -m scripts.baseline_flask --model sentiment --model-dir artifacts/models/sentiment
    curl -d '{"text": "Great food"}' -H 'Content-Type: application/json' 127.0.0.1:5000/predict
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from transformers import pipeline

from scripts.subjects import SUBJECTS


def sentiment_pipeline(model_dir: Path, max_length: int) -> Callable[[str], Any]:
    classifier = pipeline("text-classification", model=str(model_dir))
    # Cut like the served model does, so both do the same work per text.
    return lambda text: classifier(text, truncation=True, max_length=max_length)[0]


def one_text_at_a_time(model: str, model_dir: Path) -> Callable[[str], Any]:
    handler = SUBJECTS[model].load(model_dir)
    return lambda text: handler.predict([text])[0]


def create_app(answer: Callable[[str], Any]) -> Flask:
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        return jsonify(answer(request.get_json()["text"]))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SUBJECTS), default="sentiment")
    parser.add_argument("--model-dir", type=Path, default=Path("artifacts/models/sentiment"))
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    if args.model == "sentiment":
        answer = sentiment_pipeline(args.model_dir, args.max_length)
    else:
        answer = one_text_at_a_time(args.model, args.model_dir)
    create_app(answer).run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
