import numpy as np
import pytest

from publicmesh.numbers.issue import MyNumberIssuer
from publicmesh.numbers.my_number import check_digit, check_digits, is_valid_my_number


def test_check_digit_of_the_published_example():
    # 12345678901 → check digit 8 (worked example of the ordinance's formula)
    assert check_digit("12345678901") == 8
    assert is_valid_my_number("123456789018")


@pytest.mark.parametrize("wrong", [d for d in "0123456789" if d != "8"])
def test_a_wrong_check_digit_is_rejected(wrong):
    assert not is_valid_my_number("12345678901" + wrong)


@pytest.mark.parametrize(
    "value", ["", "12345678901", "1234567890188", "12345678901８", "abcdefghijkl", None, 123456789018]
)
def test_malformed_numbers_are_rejected(value):
    assert not is_valid_my_number(value)


def test_remainder_zero_or_one_gives_zero():
    bases = np.arange(0, 5000, dtype=np.int64) * 7919
    for base, digit in zip(bases.tolist(), check_digits(bases).tolist()):
        text = f"{base:011d}"
        weights = [n + 1 if n <= 6 else n - 5 for n in range(1, 12)]
        remainder = sum(int(text[-n]) * weights[n - 1] for n in range(1, 12)) % 11
        assert digit == (0 if remainder <= 1 else 11 - remainder)


def test_issue_is_unique_deterministic_and_valid():
    issuer = MyNumberIssuer(b"k" * 32)
    numbers = issuer.issue(np.arange(200_000))
    assert len(np.unique(numbers)) == len(numbers)
    assert (issuer.issue(np.arange(200_000)) == numbers).all()
    assert all(is_valid_my_number(f"{n:012d}") for n in numbers[:5000].tolist())
    assert not (MyNumberIssuer(b"x" * 32).issue(np.arange(1000)) == numbers[:1000]).all()
