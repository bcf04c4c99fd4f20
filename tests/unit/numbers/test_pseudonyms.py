import os

import numpy as np
import pyarrow as pa
import pytest

from publicmesh.numbers.pseudonyms import PseudonymService, UnknownPseudonym


@pytest.fixture(scope="module")
def service():
    return PseudonymService(os.urandom(32))


def test_each_agency_gets_its_own_unlinkable_pseudonym(service):
    enrolled = service.enrol(np.arange(1000), ["resident-registry", "national-tax"])
    registry, tax = enrolled["resident-registry"].to_pylist(), enrolled["national-tax"].to_pylist()
    assert len(set(registry)) == 1000 and len(set(tax)) == 1000
    assert not set(registry) & set(tax)
    assert all(len(p) == 22 for p in registry)


def test_conversion_is_stateless_and_exact(service):
    enrolled = service.enrol(np.arange(500), ["a", "b", "c"])
    converted = service.convert(enrolled["a"].to_pylist(), "a", ["b", "c"])
    assert converted["b"] == enrolled["b"].to_pylist()
    assert converted["c"] == enrolled["c"].to_pylist()
    # and back again
    assert service.convert(converted["b"], "b", ["a"])["a"] == enrolled["a"].to_pylist()


def test_a_pseudonym_of_another_domain_or_a_forgery_is_refused(service):
    enrolled = service.enrol(np.arange(10), ["a", "b"])
    a0 = enrolled["a"].to_pylist()[0]
    b0 = enrolled["b"].to_pylist()[0]
    flipped = ("B" if a0[3] != "B" else "C").join([a0[:3], a0[4:]])
    out = service.convert([b0, flipped, "too-short", "!" * 22, a0], "a", ["b"])["b"]
    assert out[:4] == [None, None, None, None]
    assert out[4] == b0
    with pytest.raises(UnknownPseudonym):
        service.convert_one(flipped, "a", "b")


def test_only_the_canonical_text_form_is_accepted(service):
    p = service.enrol(np.arange(1), ["a"])["a"].to_pylist()[0]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last character's four spare bits must be zero: a variant spelling is not the same person.
    variant = p[:-1] + alphabet[alphabet.index(p[-1]) ^ 1]
    assert service.convert([variant], "a", ["b"])["b"] == [None]


def test_different_master_keys_give_different_pseudonyms():
    one = PseudonymService(b"1" * 32).enrol(np.arange(100), ["a"])["a"].to_pylist()
    two = PseudonymService(b"2" * 32).enrol(np.arange(100), ["a"])["a"].to_pylist()
    assert not set(one) & set(two)


def test_an_arrow_column_converts_into_arrow_columns_with_nulls_where_unknown(service):
    enrolled = service.enrol(np.arange(300), ["a", "b", "c"])
    asked = pa.concat_arrays(
        [enrolled["a"][:100], pa.array([None, "forged", enrolled["b"][0].as_py()]), enrolled["a"][100:]]
    )
    converted = service.convert(asked, "a", ["b", "c"])
    listed = service.convert(asked.to_pylist(), "a", ["b", "c"])
    for target in ("b", "c"):
        column = converted[target]
        assert isinstance(column, pa.StringArray) and column.to_pylist() == listed[target]
        assert column.null_count == 3 and column.to_pylist()[100:103] == [None] * 3
        assert column.filter(column.is_valid()).equals(enrolled[target])
        # Nothing lies under the nulls: no bytes of a pseudonym for an entry that named nobody.
        assert column.buffers()[2].size == 22 * 300


def test_a_chunked_column_converts_like_one_array(service):
    enrolled = service.enrol(np.arange(50), ["a", "b"])["a"]
    chunked = pa.chunked_array([enrolled[:20], enrolled[20:]])
    assert service.convert(chunked, "a", ["b"])["b"].equals(service.convert(enrolled, "a", ["b"])["b"])
