"""Token authorization stays on; the project's client renews keys that expired."""

from __future__ import annotations

import json
import time

from review_analysis.torchserve import start_server


def test_client_renews_an_expired_inference_key(tmp_path, tiny_store):
    server = start_server(tmp_path / "ts", tiny_store, "sentiment.mar", token_expiration_min="0.05")
    try:
        with server.client() as client:
            first_key = client.key("inference")
            time.sleep(4)  # keys live 3 s here
            stale = client.http.post(
                client.predict_url("sentiment"),
                json={"text": "hello"},
                headers={"Authorization": f"Bearer {first_key}"},
            )
            assert stale.status_code == 400
            assert "Token Authorization failed" in stale.text
            assert client.predict("sentiment", "hello")["model"]["name"] == "sentiment"
            keys = json.loads(server.key_file.read_text())
            assert keys["inference"]["key"] != first_key
    finally:
        server.stop()
