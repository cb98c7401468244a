"""The common tutorial design, kept as the benchmark's baseline: Flask + a ``transformers``
pipeline, one text per request, one process, Flask's own server (``app.run()``, threaded as
Flask runs it by default).

    python -m scripts.baseline_flask --model-dir artifacts/models/sentiment --port 5000
    curl -d '{"text": "Great food"}' -H 'Content-Type: application/json' 127.0.0.1:5000/predict
"""

from __future__ import annotations

import argparse

from flask import Flask, jsonify, request
from transformers import pipeline


def create_app(model_dir: str, max_length: int) -> Flask:
    app = Flask(__name__)
    classifier = pipeline("text-classification", model=model_dir)

    @app.post("/predict")
    def predict():
        # Cut like the served model does, so both do the same work per text.
        answer = classifier(request.get_json()["text"], truncation=True, max_length=max_length)
        return jsonify(answer[0])

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="artifacts/models/sentiment")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    create_app(args.model_dir, args.max_length).run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
