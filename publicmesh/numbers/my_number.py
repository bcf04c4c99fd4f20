"""My Number (個人番号): the 12-digit number and its check digit (番号法施行令 第8条, 総務省令)."""

from __future__ import annotations

import numpy as np

# Weights for the 11 base digits, counted from the right: Q_n = n + 1 (n ≤ 6), n − 5 (7 ≤ n ≤ 11).
_WEIGHTS_FROM_RIGHT = np.array([n + 1 if n <= 6 else n - 5 for n in range(1, 12)], dtype=np.int64)
_WEIGHTS_FROM_LEFT = _WEIGHTS_FROM_RIGHT[::-1].copy()
BASE_SPACE = 10**11


def check_digit(base11: str) -> int:
    """The check digit of an 11-digit base: 11 − (Σ P·Q mod 11), or 0 when the remainder is 0 or 1."""
    if len(base11) != 11 or not base11.isdigit():
        raise ValueError("a My Number base has exactly 11 digits")
    digits = np.frombuffer(base11.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    return _check_from_digits(digits[None, :])[0].item()


def _check_from_digits(digits: np.ndarray) -> np.ndarray:
    remainder = (digits * _WEIGHTS_FROM_LEFT).sum(axis=1) % 11
    return np.where(remainder <= 1, 0, 11 - remainder)


def check_digits(bases: np.ndarray) -> np.ndarray:
    """Vectorised check digits of integer bases in [0, 10**11)."""
    bases = np.asarray(bases, dtype=np.int64)
    powers = 10 ** np.arange(10, -1, -1, dtype=np.int64)
    digits = (bases[:, None] // powers) % 10
    return _check_from_digits(digits)


def with_check_digits(bases: np.ndarray) -> np.ndarray:
    """12-digit My Numbers as integers (base × 10 + check digit)."""
    bases = np.asarray(bases, dtype=np.int64)
    return bases * 10 + check_digits(bases)


def is_valid_my_number(value: str) -> bool:
    """True for 12 ASCII digits whose last digit is the right check digit."""
    if not isinstance(value, str) or len(value) != 12 or not value.isascii() or not value.isdigit():
        return False
    return check_digit(value[:11]) == int(value[11])
