"""Assignment parity with the `growthbook` package (the SDK our users run in their apps), on thousands of ids."""

from __future__ import annotations

import random

import pytest
from growthbook import core as gb

from tools.experiments.assignment import (
    assign_variant_index,
    bucket_ranges,
    choose_variant,
    fnv1a32,
    hash_fraction,
)

ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz0123456789-_",
    "äöüßéèêçñÅØ",  # accented Latin: 2-byte UTF-8, 1 UTF-16 unit
    "日本語中文한국어",  # CJK: 3-byte UTF-8, 1 UTF-16 unit
    "😀🎧🎙️👩‍💻",  # astral plane + ZWJ: surrogate pairs (2 UTF-16 units each)
]


def _ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ids = []
    for i in range(count):
        alphabet = ALPHABETS[i % len(ALPHABETS)] if i % 3 else ALPHABETS[0]
        ids.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))))
    return ids


def test_public_vectors() -> None:
    assert fnv1a32("a") == 0xE40C292C
    assert hash_fraction("exp1", "user-1") == 0.3993
    assert hash_fraction("exp1", "user-2") == 0.4262
    assert hash_fraction("checkout-button", "123") == 0.9002
    assert hash_fraction("exp1", "user-1", hash_version=1) == 0.718
    assert hash_fraction("exp1", "user-1", hash_version=3) is None


@pytest.mark.parametrize("hash_version", [1, 2])
def test_hash_matches_the_sdk_on_ascii_and_non_ascii_ids(hash_version: int) -> None:
    for seed in ("onboarding-flow", "ñandú-定价", "🎧"):
        for unit_id in _ids(3000, seed=hash_version):
            assert hash_fraction(seed, unit_id, hash_version) == gb.gbhash(seed, unit_id, hash_version), (
                unit_id
            )


def test_variants_match_the_sdk_with_weights_coverage_and_gaps() -> None:
    rng = random.Random(11)
    ids = _ids(4000, seed=3)
    for _ in range(25):
        variants = rng.randint(2, 5)
        raw = [rng.random() for _ in range(variants)]
        weights = [w / sum(raw) for w in raw]
        coverage = rng.choice([1.0, 0.5, 0.1, 0.0, 1.3, -0.2])
        seed = f"exp-{rng.random()}"
        ours = bucket_ranges(variants, coverage, weights)
        theirs = gb.getBucketRanges(variants, coverage, weights)
        assert ours == theirs
        for unit_id in ids:
            n = gb.gbhash(seed, unit_id, 2)
            expected = gb.chooseVariation(n, theirs) if n is not None else -1
            got = assign_variant_index(seed, unit_id, weights, coverage=coverage)
            assert (got if got is not None else -1) == expected, (seed, unit_id)


@pytest.mark.parametrize(
    "weights",
    [[0.5, 0.6], [0.5], [float("nan"), 0.5], [-0.5, 1.5], [True, False], [0.2, 0.2, 0.2]],
)
def test_invalid_weights_fall_back_to_equal_like_the_sdk(weights: list[float]) -> None:
    assert bucket_ranges(2, 1.0, weights) == gb.getBucketRanges(2, 1.0, weights)


def test_empty_id_and_gaps_are_not_assigned() -> None:
    assert assign_variant_index("exp", "", [0.5, 0.5]) is None
    assert choose_variant(0.75, [(0.0, 0.25), (0.5, 0.7)]) is None
    assert bucket_ranges(0) == []


@pytest.mark.parametrize("hash_version", [1, 2, 3])
def test_the_chooser_gives_the_same_answers_as_the_sdk(hash_version: int) -> None:
    from tools.experiments.assignment import VariantChooser

    rng = random.Random(5)
    ids = [*_ids(3000, seed=9), ""]
    for seed in ("pricing-prompt", "ñandú-定价:phase-1", "🎧"):
        raw = [rng.random() for _ in range(3)]
        weights = [w / sum(raw) for w in raw]
        chooser = VariantChooser(seed, weights, coverage=0.7, hash_version=hash_version)
        for unit_id in ids:
            expected = assign_variant_index(seed, unit_id, weights, coverage=0.7, hash_version=hash_version)
            assert chooser.choose(unit_id) == expected, unit_id
            if unit_id and hash_version in (1, 2):
                sdk = gb.chooseVariation(
                    gb.gbhash(seed, unit_id, hash_version), gb.getBucketRanges(3, 0.7, weights)
                )
                assert (expected if expected is not None else -1) == sdk, unit_id
