"""Generate the Python gRPC stubs for TorchServe's own ``inference.proto`` and ``management.proto``.

    python -m scripts.grpc_stubs        # run by scripts/setup.sh; --force regenerates

The protos are read from the installed TorchServe's frontend jar, so the stubs always match
the server version in requirements.txt and no copy of the protos lives in the repo. The stubs
land in ``scripts/ts_grpc/`` (git-ignored) as the package ``scripts.ts_grpc``.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

import grpc_tools
import ts
from grpc_tools import protoc

PACKAGE = "scripts.ts_grpc"
OUTPUT_ROOT = Path(__file__).resolve().parent.parent
STUB_DIR = OUTPUT_ROOT / PACKAGE.replace(".", "/")
SERVICES = ("inference", "management")
# inference.proto imports google/rpc/status.proto, which grpcio-tools does not ship; the jar
# does. Its Python module comes from googleapis-common-protos at run time.
DEPENDENCIES = ("google/rpc/status.proto",)


def frontend_jar() -> Path:
    return Path(ts.__file__).parent / "frontend" / "model-server.jar"


def generate() -> None:
    """Extract the protos into a tree that mirrors the package, then run protoc on them."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(frontend_jar()) as jar:
        root = Path(tmp)
        sources = []
        for service in SERVICES:
            target = root / PACKAGE.replace(".", "/") / f"{service}.proto"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(jar.read(f"proto/{service}.proto"))
            sources.append(str(target.relative_to(root)))
        for dependency in DEPENDENCIES:
            target = root / dependency
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(jar.read(dependency))
        STUB_DIR.mkdir(parents=True, exist_ok=True)
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        command = [
            "grpc_tools.protoc",
            f"-I{root}",
            f"-I{well_known}",
            f"--python_out={OUTPUT_ROOT}",
            f"--grpc_python_out={OUTPUT_ROOT}",
            *sources,
        ]
        if protoc.main(command) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(command)}")


def is_generated() -> bool:
    return all((STUB_DIR / f"{s}_pb2_grpc.py").exists() for s in SERVICES)


def load(service: str) -> tuple[ModuleType, ModuleType]:
    """The messages and service modules of ``service``, generating the stubs if missing."""
    if not is_generated():
        generate()
    return (
        importlib.import_module(f"{PACKAGE}.{service}_pb2"),
        importlib.import_module(f"{PACKAGE}.{service}_pb2_grpc"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="regenerate existing stubs")
    args = parser.parse_args()
    if args.force or not is_generated():
        generate()
    print(f"gRPC stubs for TorchServe {ts.__version__} in {STUB_DIR}")


if __name__ == "__main__":
    main()
