"""Generate the Python gRPC stubs for TorchServe's own ``inference.proto`` and ``management.proto``.

    review-analysis train grpc-stubs          # rewrite the shipped stubs
    review-analysis train grpc-stubs --check  # exit 1 if they differ (a test runs it)

The protos are read from the installed TorchServe's frontend jar, so no copy of them lives in
the repo. The stubs ship generated in this package (``review_analysis.ts_grpc``), so a client
needs neither TorchServe nor grpcio-tools; the check keeps them equal to what TorchServe 0.12's
protos give with the pinned grpcio-tools.
"""

from __future__ import annotations

import argparse
import tempfile
import zipfile
from pathlib import Path

import grpc_tools
import ts
from grpc_tools import protoc

PACKAGE = "review_analysis.ts_grpc"
# The directory that holds the package review_analysis (src/).
OUTPUT_ROOT = Path(__file__).resolve().parents[2]
STUB_DIR = OUTPUT_ROOT / PACKAGE.replace(".", "/")
SERVICES = ("inference", "management")
# inference.proto imports google/rpc/status.proto, which grpcio-tools does not ship; the jar
# does. Its Python module comes from googleapis-common-protos at run time.
DEPENDENCIES = ("google/rpc/status.proto",)


def frontend_jar() -> Path:
    return Path(ts.__file__).parent / "frontend" / "model-server.jar"


def generate(output_root: Path) -> None:
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
        (output_root / PACKAGE.replace(".", "/")).mkdir(parents=True, exist_ok=True)
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        command = [
            "grpc_tools.protoc",
            f"-I{root}",
            f"-I{well_known}",
            f"--python_out={output_root}",
            f"--grpc_python_out={output_root}",
            *sources,
        ]
        if protoc.main(command) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(command)}")


def check() -> list[str]:
    """The shipped stub files that differ from what the installed TorchServe's protos give."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / PACKAGE.replace(".", "/")
        return [
            path.name
            for path in sorted(fresh.glob("*_pb2*.py"))
            if not (STUB_DIR / path.name).is_file()
            or (STUB_DIR / path.name).read_bytes() != path.read_bytes()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = check()
        print(f"Stale stubs: {stale}" if stale else f"Stubs match TorchServe {ts.__version__}")
        return 1 if stale else 0
    generate(OUTPUT_ROOT)
    print(f"gRPC stubs for TorchServe {ts.__version__} in {STUB_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
