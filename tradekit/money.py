"""Exact money: decimal strings on the wire, integers in the smallest unit inside.

Invariant: no float ever holds an amount. `parse_units` accepts only plain
decimal notation ("12", "0.5", "12.50"): no sign, no exponent, no NaN or
Infinity, no more fractional digits than the scale allows, and at most
MAX_UNITS, so every amount fits a signed 64-bit column downstream.
"""

import re
from functools import lru_cache

MAX_UNITS = 2**62  # keeps price * quantity sums and balances inside int64 after checks

_PLAIN_DECIMAL = re.compile(r"([0-9]{1,30})(?:\.([0-9]{1,30}))?")


class AmountError(ValueError):
    """The string is not an exact, in-range amount at the given scale."""


# Prices and quantities repeat a lot on a busy market, so both directions are
# memoized (bounded, in C); both are pure functions of their arguments.
@lru_cache(maxsize=65536)
def parse_units(text: str, decimals: int) -> int:
    """'12.5' at 2 decimals -> 1250. Raises AmountError for anything inexact."""
    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None:
        raise AmountError(f"{text[:40]!r} is not a plain decimal number")
    whole: str = match.group(1)
    frac: str = match.group(2) or ""
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        raise AmountError(f"{text!r} has more than {decimals} decimals")
    units: int = int(whole) * 10**decimals + (
        int(frac) * 10 ** (decimals - len(frac)) if frac else 0
    )
    if units > MAX_UNITS:
        raise AmountError(f"{text[:40]!r} is too large")
    return units


@lru_cache(maxsize=65536)
def format_units(units: int, decimals: int) -> str:
    """1250 at 2 decimals -> '12.50'. Always exactly `decimals` fractional digits."""
    if decimals == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
