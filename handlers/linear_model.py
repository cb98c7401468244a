"""A TF-IDF + linear classifier stored as joblib files, for models that are not transformers.

The offline default toxicity model is alt-profanity-check's (a calibrated linear SVM over
TF-IDF features); ``config.json`` beside the files names the backend and the label.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np

BACKEND = "tfidf-linear"


class LinearTextModel:
    def __init__(self, model_dir: Path):
        self.vectorizer = joblib.load(model_dir / "vectorizer.joblib")
        self.classifier = joblib.load(model_dir / "model.joblib")

    def positive_probability(self, texts: list[str]) -> np.ndarray:
        """P(positive class) per text, shape (len(texts),)."""
        return self.classifier.predict_proba(self.vectorizer.transform(texts))[:, 1]
