import base64
import binascii
import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publicmesh.protocol import codec

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
CANONICAL = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")  # the last character's 4 spare bits are zero


def reference(values: list) -> tuple[np.ndarray, np.ndarray]:
    """The specification, one value at a time: 22 url-safe characters, canonical last one."""
    blocks, mask = np.zeros((len(values), 16), np.uint8), np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if isinstance(v, str) and CANONICAL.fullmatch(v):
            blocks[i], mask[i] = np.frombuffer(base64.urlsafe_b64decode(v + "=="), np.uint8), True
    return blocks, mask


def legacy(values: list) -> tuple[np.ndarray, np.ndarray]:
    """The decoder before the columnar one (per value through binascii), kept to compare against."""
    blocks, mask = np.zeros((len(values), 16), np.uint8), np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if not (isinstance(v, str) and len(v) == 22 and v.isascii()):
            continue
        try:
            raw = binascii.a2b_base64((v + "AA").encode().translate(bytes.maketrans(b"-_", b"+/")), strict_mode=True)
        except binascii.Error:
            continue
        blocks[i], mask[i] = np.frombuffer(raw[:16], np.uint8), raw[16] == 0
    return blocks, mask


pseudonyms = st.binary(min_size=16, max_size=16).map(
    lambda b: codec.encode(np.frombuffer(b, np.uint8)[None]).to_pylist()[0]
)
near_misses = st.text(alphabet=ALPHABET + "+/= \n\x00é.", min_size=22, max_size=22)
ascii_near_misses = st.text(alphabet=ALPHABET + "+/= \n\x00\x7f.", min_size=22, max_size=22)
# 22 bytes in UTF-8 but 21 characters: the same width as a pseudonym in the data buffer.
two_byte_inside = st.tuples(st.text(alphabet=ALPHABET, min_size=20, max_size=20), st.integers(0, 20)).map(
    lambda t: t[0][: t[1]] + "é" + t[0][t[1] :]
)
anything = st.one_of(
    pseudonyms, near_misses, st.none(), st.text(max_size=30), st.text(alphabet=ALPHABET, min_size=20, max_size=24)
)


def assert_same(found, expected):
    np.testing.assert_array_equal(found[1], expected[1])
    np.testing.assert_array_equal(found[0][expected[1]], expected[0][expected[1]])
    assert not found[0][~found[1]].any(), "malformed entries decode to zeros"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(pseudonyms, ascii_near_misses, two_byte_inside), max_size=40))
def test_a_regular_array_decodes_as_the_specification_says(values):
    array = pa.array(values, pa.string())
    assert codec._regular(array)  # every value 22 bytes, no nulls: the whole-buffer path
    assert_same(codec.decode(array), reference(values))


@settings(max_examples=300, deadline=None)
@given(st.lists(anything, max_size=40), st.integers(0, 5))
def test_an_irregular_or_sliced_array_decodes_like_a_list(values, skip):
    expected = reference(values[skip:])
    assert_same(codec.decode(pa.array(values, pa.string())[skip:]), expected)
    assert_same(codec.decode(pa.array(values[skip:], pa.large_string())), expected)
    assert_same(codec.decode(values[skip:]), expected)
    halves = pa.chunked_array([pa.array(values[skip:][:3], pa.string()), pa.array(values[skip:][3:], pa.string())])
    assert_same(codec.decode(halves), expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(anything.filter(lambda v: not (isinstance(v, str) and ("+" in v or "/" in v))), max_size=40))
def test_the_columnar_decoder_agrees_with_the_legacy_one(values):
    assert_same(codec.decode(pa.array(values, pa.string())), legacy(values))


def test_plus_and_slash_are_no_second_spelling_of_dash_and_underscore():
    dash = "AAAA-AAAAAAAAAAAAAAAAA"
    _, mask = codec.decode([dash, dash.replace("-", "+"), dash.replace("-", "_"), dash.replace("-", "/")])
    assert mask.tolist() == [True, False, True, False]


def test_python_objects_other_than_ascii_text_are_malformed():
    good = codec.encode(np.arange(16, dtype=np.uint8)[None]).to_pylist()[0]
    _, mask = codec.decode([good, 7, None, b"x" * 22, "\ud800" * 22, good])
    assert mask.tolist() == [True, False, False, False, False, True]


def test_millions_round_trip_through_the_whole_buffer_path():
    blocks = np.random.default_rng(1).integers(0, 256, (300_000, 16), dtype=np.uint8)
    decoded, mask = codec.decode(codec.encode(blocks))
    assert mask.all() and (decoded == blocks).all()


@pytest.mark.parametrize("empty", [[], pa.array([], pa.string()), pa.chunked_array([], pa.string())])
def test_nothing_decodes_to_nothing(empty):
    blocks, mask = codec.decode(empty)
    assert blocks.shape == (0, 16) and mask.shape == (0,)


def test_a_column_of_another_type_is_refused():
    with pytest.raises(TypeError):
        codec.decode(pa.array([1, 2, 3]))
