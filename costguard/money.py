"""Exact decimal money: parsing with the contract's bounds, and canonical text."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_DECIMAL_PLACES = 12
MAX_INTEGER_DIGITS = 18


class MoneyError(ValueError):
    """A value that is not an exact, finite decimal within the contract's bounds."""


def parse_money(value: object) -> Decimal:
    """Read a decimal exactly from a string, an int or a Decimal; floats are refused (they are not exact)."""
    if isinstance(value, bool | float):
        raise MoneyError("must be a decimal string or JSON number, not a binary float")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise MoneyError("must not be empty")
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:
            raise MoneyError(f"{value!r} is not a decimal number") from exc
    else:
        raise MoneyError("must be a decimal string or number")
    if not amount.is_finite():
        raise MoneyError("must be finite (NaN and Infinity are refused)")
    sign_digits_exponent = amount.as_tuple()
    exponent = sign_digits_exponent.exponent
    assert isinstance(exponent, int)
    if amount != 0:
        places = max(0, -exponent)
        # Trailing zeros beyond 12 places ("1.0000000000000") are still exact: strip them first.
        if places > MAX_DECIMAL_PLACES:
            normalized = amount.normalize()
            norm_exp = normalized.as_tuple().exponent
            assert isinstance(norm_exp, int)
            if -norm_exp > MAX_DECIMAL_PLACES:
                raise MoneyError(f"has more than {MAX_DECIMAL_PLACES} decimal places")
            amount = normalized
        if amount.adjusted() + 1 > MAX_INTEGER_DIGITS:
            raise MoneyError(f"has more than {MAX_INTEGER_DIGITS} integer digits")
    else:
        amount = Decimal(0)
    return amount


def money_text(amount: Decimal) -> str:
    """Canonical text of an amount: plain notation, no exponent, no trailing zeros beyond what is needed."""
    if amount == 0:
        return "0"
    text = format(amount, "f")  # exact at any precision, unlike normalize(), which rounds to the context
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def money_display(amount: Decimal, places: int = 2) -> str:
    """Text with at least ``places`` decimals, more when the value needs them (never rounds)."""
    text = money_text(amount)
    whole, _, frac = text.partition(".")
    if len(frac) < places:
        frac = frac + "0" * (places - len(frac))
    return f"{whole}.{frac}" if places or frac else whole
