"""The common tutorial design, kept as the benchmark's baseline: a Flask app, one text per
request, one process, Flask's own server (``app.run()``, threaded as Flask runs it by default).

For sentiment it calls a ``transformers`` pipeline, as the tutorials do. The other models
have no pipeline (toxicity is a scikit-learn model; review runs two models; ABSA builds
sentence pairs), so the app calls the model's own handler code on one text at a time: the
same work per text as the served model, without batching or TorchServe.

    review-analysis bench baseline-flask --model sentiment --model-dir artifacts/models/sentiment
    curl -d '{"text": "Great food"}' -H 'Content-Type: application/json' 127.0.0.1:5000/predict
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from flask import Flask, jsonify, request
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed
from transformers import pipeline

from review_analysis.bench.subjects import SUBJECTS, Subject
from review_analysis.paths import MODELS, REPO
from review_analysis.torchserve import free_ports


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


@retry(
    stop=stop_after_delay(180),
    wait=wait_fixed(0.5),
    retry=retry_if_exception_type(httpx.HTTPError),
    reraise=True,
)
def wait_for_flask(url: str) -> None:
    httpx.post(url, json={"text": "ready?"}, timeout=30).raise_for_status()


@contextmanager
def flask_baseline(subject: Subject, model_dir: Path) -> Iterator[str]:
    """The tutorial app on a free loopback port; yields its URL."""
    (port,) = free_ports(1)
    max_length = subject.settings()["max_length"]
    command = [
        sys.executable,
        "-m",
        "review_analysis.bench.baseline_flask",
        "--model",
        subject.name,
    ]
    command += ["--model-dir", str(model_dir), "--port", str(port), "--max-length", str(max_length)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/predict"
    try:
        wait_for_flask(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SUBJECTS), default="sentiment")
    parser.add_argument("--model-dir", type=Path, default=MODELS / "sentiment")
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
