"""Starting and stopping TorchServe: readiness, loud failures, nothing left behind."""

from __future__ import annotations

import socket

import psutil
import pytest

from review_analysis.torchserve import StartupError, free_ports, start_server


def test_stop_leaves_no_process_behind(tmp_path, tiny_store):
    server = start_server(tmp_path / "ts", tiny_store, "sentiment.mar")
    frontend = psutil.Process(server.pid())
    processes = [frontend, *frontend.children(recursive=True)]
    assert len(processes) >= 2  # the Java frontend and at least one Python worker
    server.stop()
    assert server.pid() is None
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_dying_frontend_fails_loudly_with_its_logs(tmp_path, tiny_store):
    (port,) = free_ports(1)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        with pytest.raises(StartupError) as failure:
            start_server(
                tmp_path / "ts",
                tiny_store,
                "sentiment.mar",
                inference_address=f"http://127.0.0.1:{port}",
            )
    message = str(failure.value)
    assert "not running" in message
    assert "Address already in use" in message
