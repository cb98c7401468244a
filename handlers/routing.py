"""Traffic-split arithmetic of the A/B router (handlers/router.py), free of TorchServe."""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any


def rendezvous_score(key: str, variant: str, weight: float) -> float:
    """Weighted rendezvous (highest random weight) score of one variant for one key."""
    if weight <= 0:
        return -math.inf
    digest = hashlib.sha256(f"{key}\0{variant}".encode()).digest()
    uniform = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)  # in (0, 1)
    return -weight / math.log(uniform)


def choose_variant(variants: dict[str, float], key: str | None, rng: random.Random) -> str:
    """The version that answers: sticky for a key, random by weight without one."""
    if key is None:
        return rng.choices(list(variants), weights=list(variants.values()))[0]
    return max(variants, key=lambda variant: rendezvous_score(key, variant, variants[variant]))


def validated_variants(variants: Any) -> dict[str, float]:
    if not isinstance(variants, dict) or not variants:
        raise ValueError(f"variants must map versions to weights, got {variants!r}")
    weights = {str(version): float(weight) for version, weight in variants.items()}
    if any(weight < 0 for weight in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    return weights
