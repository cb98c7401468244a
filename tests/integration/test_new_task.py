"""The README's worked example of a new task, as a user would ship it: ``handlers/language.py``
and ``configs/language/model-config.yaml`` packed by ``build_mar.sh`` and served by TorchServe.

The model is a tiny random-weight BERT with the languages as labels: the test checks that the
contract holds end to end (answer shape, the batch's error slots), not the predictions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from review_analysis.archives import build_mar
from review_analysis.client import ServerError
from review_analysis.torchserve import start_server
from tests.support.tiny_models import build_tiny_classifier

LANGUAGES = ("de", "en", "fr")


def test_a_new_task_packs_and_serves_with_its_own_config(tmp_path: Path):
    model_dir = build_tiny_classifier(tmp_path / "language-model", labels=LANGUAGES)
    store = tmp_path / "store"
    # As the README shows it: the handler's own config, no other option.
    build_mar("language", "1.0", model_dir, "language", store)
    server = start_server(tmp_path / "ts", store, "language.mar")
    try:
        with server.client() as client:
            text = "Das Essen war gut. The staff were friendly."
            answer = client.predict("language", text)
            assert set(answer) == {"language", "score", "scores", "sentences", "truncated", "model"}
            assert answer["language"] in LANGUAGES and list(answer["scores"]) == list(LANGUAGES)
            assert [s["text"] for s in answer["sentences"]] == [
                "Das Essen war gut.",
                "The staff were friendly.",
            ]
            assert answer["model"] == {"name": "language", "version": "1.0"}
            with pytest.raises(ServerError) as refused:
                client.predict("language", "   ")
            assert refused.value.status == 400
            assert refused.value.body["error"]["type"] == "InvalidInput"
            # A sentence over max_length is cut and says so.
            long = client.predict("language", " ".join(["Essen"] * 200))
            assert long["truncated"] is True
    finally:
        server.stop()
