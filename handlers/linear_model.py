"""A TF-IDF + linear classifier stored as joblib files, for models that are not transformers.

The offline default toxicity model is alt-profanity-check's (a calibrated linear SVM over
TF-IDF features); ``config.json`` beside the files names the backend and the label.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV

BACKEND = "tfidf-linear"


class LinearTextModel:
    def __init__(self, model_dir: Path):
        self.vectorizer = joblib.load(model_dir / "vectorizer.joblib")
        self.classifier = joblib.load(model_dir / "model.joblib")
        self.ensemble = SigmoidLinearEnsemble.of(self.classifier)

    def positive_probability(self, texts: list[str]) -> np.ndarray:
        """P(positive class) per text, shape (len(texts),)."""
        features = self.vectorizer.transform(texts)
        if self.ensemble is not None:
            return self.ensemble.positive_probability(features)
        return self.classifier.predict_proba(features)[:, 1]


class SigmoidLinearEnsemble:
    """scikit-learn's ``CalibratedClassifierCV(method="sigmoid")`` over binary linear models,
    computed as one matrix product.

    ``predict_proba`` gives the same numbers but validates its input in each of the ensemble's
    members, about 5 ms per call whatever the batch size: most of a lone request's time.
    """

    def __init__(self, weights: np.ndarray, intercepts: np.ndarray, a: np.ndarray, b: np.ndarray):
        self.weights, self.intercepts, self.a, self.b = weights, intercepts, a, b

    @classmethod
    def of(cls, classifier: object) -> SigmoidLinearEnsemble | None:
        """The ensemble of ``classifier``, or None where it is not of that kind."""
        if not isinstance(classifier, CalibratedClassifierCV) or classifier.method != "sigmoid":
            return None
        members = classifier.calibrated_classifiers_
        if len(classifier.classes_) != 2 or not all(
            hasattr(m.estimator, "coef_") and len(m.calibrators) == 1 for m in members
        ):
            return None
        return cls(
            weights=np.stack([m.estimator.coef_.ravel() for m in members], axis=1),
            intercepts=np.array([m.estimator.intercept_[0] for m in members]),
            a=np.array([m.calibrators[0].a_ for m in members]),
            b=np.array([m.calibrators[0].b_ for m in members]),
        )

    def positive_probability(self, features) -> np.ndarray:
        decisions = features @ self.weights + self.intercepts
        return expit(-(self.a * decisions + self.b)).mean(axis=1)
