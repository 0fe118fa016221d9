"""The fault plan is a function of its seed, and its overlapping pairs come from the list."""

from __future__ import annotations

import random

from chaos.faults import KILL, KILL_TARGETS, MAX_LAG, OVERLAP_PAIRS, Deck, Fault, plan


def seeded_plan(seed: int, overlaps: int) -> list[Fault]:
    deck = Deck(random.Random(seed), KILL_TARGETS)
    pairs = Deck(random.Random(f"{seed}-pairs"), OVERLAP_PAIRS)
    return plan(random.Random(seed), deck, 45.0, 3, 1, overlaps, pairs)


def test_a_seed_gives_one_plan_with_its_overlapping_pairs() -> None:
    first = seeded_plan(7, overlaps=2)
    assert first == seeded_plan(7, overlaps=2)
    assert first != seeded_plan(8, overlaps=2)
    paired = [f for f in first if f.then]
    assert len(paired) == 2
    for fault in paired:
        assert fault.kind == KILL
        assert (fault.service, fault.then) in OVERLAP_PAIRS
        assert 0.0 <= fault.lag <= MAX_LAG
    assert [f.at for f in first] == sorted(f.at for f in first)


def test_overlaps_leave_the_rest_of_the_plan_as_it_was() -> None:
    """Adding pairs draws after the other faults: a seed's single faults do not move."""
    without = seeded_plan(3, overlaps=0)
    assert [f for f in seeded_plan(3, overlaps=1) if not f.then] == without
