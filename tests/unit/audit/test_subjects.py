"""The subject tree of an exchange about many persons: the same tree from columns and from a list, a root over
chunks as RFC 9162 defines it, and a proof for every person in it."""

from __future__ import annotations

import base64
import json
import os
import random

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publicmesh.audit import merkle
from publicmesh.audit import subjects as tree_of
from publicmesh.audit.subjects import CHUNK, PAGE, chunk_leaf, page_subjects, prove, verify

PSEUDONYM = st.binary(min_size=16, max_size=16).map(lambda b: base64.urlsafe_b64encode(b).decode()[:22])
TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=0, max_size=12)


def expected_root(subjects: list[str]) -> bytes:
    """MTH over the chunks of the sorted unique subjects, each leaf the chunk's standard compact JSON."""
    ordered = sorted(set(subjects))
    chunks = [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]
    return merkle.root(
        [merkle.leaf_hash(json.dumps(c, separators=(",", ":"), ensure_ascii=False).encode()) for c in chunks]
    )


def proof_of(tree, subject: str):
    page = next(p for p in reversed(tree.pages) if p.first <= subject)
    return prove(subject, page.number, page_subjects(page.subjects_json), [p.root for p in tree.pages], tree.count)


@settings(max_examples=60)
@given(st.lists(PSEUDONYM, min_size=1, max_size=300), st.integers(0, 3))
def test_columns_and_lists_give_the_same_tree_for_pseudonyms(values, repeats):
    values = values + values[:repeats]
    from_columns, from_list = tree_of.build(pa.array(values)), tree_of.build(values)
    assert from_columns == from_list
    assert from_columns.count == len(set(values))
    assert from_columns.root == expected_root(values)


@settings(max_examples=60)
@given(st.lists(TEXT, min_size=1, max_size=60))
def test_any_text_gives_the_tree_of_its_sorted_unique_values(values):
    assert tree_of.build(values).root == expected_root(values)
    assert tree_of.build(pa.array(values)) == tree_of.build(values)


def test_subjects_alike_in_their_first_eight_bytes_are_still_sorted_and_unique():
    values = [f"prefix00{i:014d}" for i in random.Random(3).sample(range(5000), 5000)] + [
        "prefix0000000000000000007"[:22]
    ]
    tree = tree_of.build(pa.array(values))
    assert tree == tree_of.build(values)
    assert tree.count == len(set(values))


def test_a_large_tree_built_again_for_the_same_subjects_is_the_same_tree():
    kept = tree_of.KeptTrees(keeps_over=100)  # as the log's, with Settings.hub_keeps_over lowered
    values = [base64.urlsafe_b64encode(os.urandom(16)).decode()[:22] for _ in range(3000)]
    assert kept.build(pa.array(values)) is not kept.build(pa.array(values))  # not kept: built again
    first = kept.build(pa.array(values), keep=True)
    assert len(kept) == 1
    assert kept.build(pa.array(values)) is first  # equal subjects in a new array: found again
    assert len(kept) == 0 and kept.build(pa.array(values)) is not first  # once: then let go
    kept.build(pa.array(values), keep=True)
    changed = kept.build(pa.array(values[:-1] + [values[0]]))  # one subject fewer, one repeated
    assert changed is not first and changed.count == 2999 and changed.root == expected_root(values[:-1])
    shuffled = kept.build(pa.array(values[::-1]))  # another order: built anew, to the same tree
    assert shuffled is not first and shuffled == first
    assert len(kept) == 1  # (the kept one still waits for its own subjects)


def test_a_tree_is_kept_only_over_its_threshold_and_only_the_last_one():
    small = [base64.urlsafe_b64encode(os.urandom(16)).decode()[:22] for _ in range(100)]
    kept = tree_of.KeptTrees(keeps_over=100)
    kept.build(pa.array(small), keep=True)  # not over the threshold: not kept
    assert len(kept) == 0
    large = [small + [base64.urlsafe_b64encode(os.urandom(16)).decode()[:22] for _ in range(n)] for n in (1, 2)]
    first = kept.build(pa.array(large[0]), keep=True)
    second = kept.build(pa.array(large[1]), keep=True)  # pushes the first out: one kept
    assert kept.build(pa.array(large[0])) is not first and kept.build(pa.array(large[1])) is second
    assert tree_of.build(pa.array(large[0])) == first  # the module's build keeps nothing


@pytest.mark.parametrize("count", [1, CHUNK - 1, CHUNK, CHUNK + 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE + 17])
def test_every_person_has_a_proof_and_nobody_else_does(count):
    values = [base64.urlsafe_b64encode(os.urandom(16)).decode()[:22] for _ in range(count)]
    tree = tree_of.build(pa.array(values))
    assert tree.root == expected_root(values)
    assert len(tree.pages) == -(-count // PAGE)
    for subject in random.Random(count).sample(values, min(count, 40)) + [max(values), min(values)]:
        proof = proof_of(tree, subject)
        assert proof is not None and verify(subject, proof, tree.root, tree.count)
        assert not verify(subject, proof, tree.root, tree.count + CHUNK)  # another tree size
    stranger = "~" + values[0][1:]  # sorts after every pseudonym: sought in the last page
    assert proof_of(tree, stranger) is None


def test_a_proof_does_not_hold_for_an_altered_chunk_or_another_person():
    values = [f"ap-{i:05d}" for i in range(3 * PAGE)]
    tree = tree_of.build(values)
    proof = proof_of(tree, "ap-01500")
    assert verify("ap-01500", proof, tree.root, tree.count)
    assert not verify("ap-09999", proof, tree.root, tree.count)  # not in the chunk
    forged = type(proof)([*proof.chunk[:-1], "ap-09999"], proof.chunk_index, proof.chunk_count, proof.path)
    assert not verify("ap-09999", forged, tree.root, tree.count)
    moved = type(proof)(proof.chunk, proof.chunk_index + 1, proof.chunk_count, proof.path)
    assert not verify("ap-01500", moved, tree.root, tree.count)


def test_chunk_leaves_hash_the_compact_json_array():
    assert chunk_leaf(["a", "児童"]) == merkle.leaf_hash('["a","児童"]'.encode())
