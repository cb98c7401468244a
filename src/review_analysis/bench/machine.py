"""What a benchmark ran on (every report records the CPU, since it changes between runs), and
how a report is published."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import psutil
import torch


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count() or 1,
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": os.getloadavg(),
    }


def publish(report: dict, path: Path | None) -> None:
    """Print the report as JSON, and write it to ``path`` when one is given."""
    print(json.dumps(report, indent=2))
    if path:
        path.write_text(json.dumps(report, indent=2) + "\n")
