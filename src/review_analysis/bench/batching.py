"""How to cut a batch into forward passes: texts/s in-process per batch size and
``pass_cost_tokens`` (the handler's ``plan_micro_batches``).

A batch of a served model holds the requests that queued while its worker was busy, in
arrival order, of every length. ``pass_cost_tokens`` 0 lets only texts of one length share a
pass; a very large value puts the whole batch in one pass padded to its longest text (the
handler before issue 7). Rounds interleave the settings, so a noisy neighbour hits all alike.

    review-analysis bench batching [--model sentiment] [--threads 1] [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics

from review_analysis.bench.subjects import SUBJECTS, texts_per_second

WHOLE_BATCH = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The models whose handler runs transformer forward passes itself.
    parser.add_argument("--model", choices=["sentiment", "absa"], default="sentiment")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32, 64])
    parser.add_argument("--costs", type=int, nargs="+", default=[0, 16, 32, 64, WHOLE_BATCH])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    subject = SUBJECTS[args.model]
    texts = subject.texts()
    handler = subject.load(subject.parts[""], threads=args.threads)
    settings = [(cost, batch_size) for cost in args.costs for batch_size in args.batch_sizes]
    rates: dict[tuple[int, int], list[float]] = {setting: [] for setting in settings}
    for _ in range(args.rounds):
        for cost, batch_size in settings:
            # Both are read at every forward pass: one loaded model serves every setting.
            handler.settings.update(pass_cost_tokens=cost, inference_batch_size=batch_size)
            rates[cost, batch_size].append(
                texts_per_second(handler, texts, batch_size, args.seconds)
            )

    print(f"{args.model}, {args.threads} thread(s): texts/s, median of {args.rounds} rounds")
    print("| pass_cost_tokens | " + " | ".join(f"batch {b}" for b in args.batch_sizes) + " |")
    print("|---|" + "---|" * len(args.batch_sizes))
    for cost in args.costs:
        label = "whole batch in one pass" if cost == WHOLE_BATCH else str(cost)
        cells = [f"{statistics.median(rates[cost, b]):.1f}" for b in args.batch_sizes]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
