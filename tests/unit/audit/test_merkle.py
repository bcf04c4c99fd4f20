"""RFC 9162 Merkle tree: reference vectors, a literal recursive reading of the RFC, and properties."""

from __future__ import annotations

import hashlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from timing import budget

from publicmesh.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# Certificate Transparency reference leaves and the tree head for every size 0..8.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
CT_HASHES = [leaf_hash(d) for d in CT_LEAVES]
H = bytes.fromhex

CT_INCLUSION = [  # (index, tree size, proof)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


# --- the RFC's definitions, transcribed literally (recursive; fine for small trees) ---------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], whole: bool) -> list[bytes]:
    if m == len(d):
        return [] if whole else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return ref_subproof(m, d[:k], whole) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def flipped(proof: list[bytes], which: int, bit: int = 0x01) -> list[bytes]:
    altered = list(proof)
    altered[which] = bytes([altered[which][0] ^ bit]) + altered[which][1:]
    return altered


# --- reference vectors ----------------------------------------------------------------------------------


def test_hashing_prefixes():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest() == CT_ROOTS[1]
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert EMPTY_ROOT == CT_ROOTS[0] == root([])


@pytest.mark.parametrize("n", range(9))
def test_ct_roots(n):
    assert root(CT_HASHES[:n]) == CT_ROOTS[n]
    tree = CompactRange()
    tree.extend(CT_HASHES[:n])
    assert tree.root() == CT_ROOTS[n]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_ct_inclusion_vectors(index, size, proof):
    expected = [H(p) for p in proof]
    assert inclusion_proof(index, CT_HASHES[:size]) == expected
    assert verify_inclusion(index, size, CT_HASHES[index], expected, CT_ROOTS[size])
    assert not verify_inclusion(index, size, CT_HASHES[index], flipped(expected, 0), CT_ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_ct_consistency_vectors(old, new, proof):
    expected = [H(p) for p in proof]
    assert consistency_proof(old, CT_HASHES[:new]) == expected
    assert verify_consistency(old, new, CT_ROOTS[old], CT_ROOTS[new], expected)
    assert not verify_consistency(old, new, CT_ROOTS[old], CT_ROOTS[new], flipped(expected, -1))
    assert not verify_consistency(old, new, CT_ROOTS[new], CT_ROOTS[old], expected)


# --- agreement with the RFC's recursive definitions and exhaustive small trees -------------------------


def test_matches_rfc_definitions_exhaustively():
    data = leaves(40)
    for n in range(1, 41):
        d = data[:n]
        assert root(d) == ref_mth(d)
        for m in range(n):
            assert inclusion_proof(m, d) == ref_path(m, d)
        for m in range(1, n):
            assert consistency_proof(m, d) == ref_subproof(m, d, True)


def test_every_proof_verifies_and_nothing_wrong_does():
    data = leaves(33)
    roots = [root(data[:n]) for n in range(34)]
    for n in range(1, 34):
        for m in range(n):
            proof = inclusion_proof(m, data[:n])
            assert verify_inclusion(m, n, data[m], proof, roots[n])
            assert not verify_inclusion(m, n, data[(m + 1) % n], proof, roots[n]) or n == 1
            if m ^ 1 < n:  # the sibling's index puts the hashes in the other order
                assert not verify_inclusion(m ^ 1, n, data[m], proof, roots[n])
            if proof:
                assert not verify_inclusion(m, n, data[m], proof[:-1], roots[n])
                assert not verify_inclusion(m, n, data[m], proof + [roots[n]], roots[n])
        for m in range(0, n + 1):
            proof = consistency_proof(m, data[:n])
            assert verify_consistency(m, n, roots[m], roots[n], proof)
            if 0 < m < n:
                assert not verify_consistency(m, n, roots[m], roots[n], proof[:-1])
                assert not verify_consistency(m, n, roots[m], roots[n], proof + [roots[n]])
                assert not verify_consistency(m, n, roots[m - 1], roots[n], proof)


def test_degenerate_inputs_are_refused():
    assert not verify_inclusion(0, 0, CT_HASHES[0], [], EMPTY_ROOT)
    assert not verify_inclusion(8, 8, CT_HASHES[0], [], CT_ROOTS[8])
    assert not verify_inclusion(0, 1, b"short", [], CT_ROOTS[1])
    assert verify_consistency(0, 8, EMPTY_ROOT, CT_ROOTS[8], [])
    assert not verify_consistency(0, 8, CT_ROOTS[1], CT_ROOTS[8], [])
    assert not verify_consistency(8, 6, CT_ROOTS[8], CT_ROOTS[6], [])
    assert not verify_consistency(6, 8, CT_ROOTS[6], CT_ROOTS[8], [])
    assert verify_consistency(4, 4, CT_ROOTS[4], CT_ROOTS[4], [])
    assert not verify_consistency(4, 4, CT_ROOTS[4], CT_ROOTS[5], [])
    with pytest.raises(ValueError):
        inclusion_proof(8, CT_HASHES)
    with pytest.raises(ValueError):
        consistency_proof(9, CT_HASHES)


# --- properties -----------------------------------------------------------------------------------------

sizes_and_index = st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1)))


@settings(max_examples=150, deadline=None)
@given(sizes_and_index, st.data())
def test_inclusion_property(n_m, data):
    n, m = n_m
    d = leaves(n)
    top = root(d)
    proof = inclusion_proof(m, d)
    assert verify_inclusion(m, n, d[m], proof, top)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        byte = data.draw(st.integers(0, 31))
        altered = list(proof)
        altered[which] = altered[which][:byte] + bytes([altered[which][byte] ^ 0x80]) + altered[which][byte + 1 :]
        assert not verify_inclusion(m, n, d[m], altered, top)
    assert not verify_inclusion(m, n, leaf_hash(b"not a leaf"), proof, top)


@settings(max_examples=150, deadline=None)
@given(sizes_and_index, st.data())
def test_consistency_property(n_m, data):
    n, m = n_m
    m += 1  # old sizes 1..n
    d = leaves(n)
    old_root, new_root = root(d[:m]), root(d)
    proof = consistency_proof(m, d)
    assert verify_consistency(m, n, old_root, new_root, proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        assert not verify_consistency(m, n, old_root, new_root, flipped(proof, which, 0x10))
    if m < n:
        assert not verify_consistency(m, n, old_root, root(d[:-1] + [leaf_hash(b"x")]), proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 600), st.integers(0, 600))
def test_compact_range_matches_root_and_round_trips(n, cut):
    d = leaves(n)
    tree = CompactRange()
    tree.extend(d[: min(cut, n)])
    restored = CompactRange.from_bytes(tree.size, tree.to_bytes())
    restored.extend(d[min(cut, n) :])
    assert restored.root() == root(d)
    if n <= 64:
        assert root(d) == ref_mth(d)
    assert len(restored.hashes) == n.bit_count()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=6))
def test_extending_by_blocks_is_appending_one_by_one(chunks):
    """extend adds perfect subtrees level by level; after every chunk its frontier is the one-by-one frontier."""
    d = leaves(sum(chunks))
    by_blocks, one_by_one, done = CompactRange(), CompactRange(), 0
    for chunk in chunks:
        by_blocks.extend(d[done : done + chunk])
        for leaf in d[done : done + chunk]:
            one_by_one.append(leaf)
        done += chunk
        assert by_blocks == one_by_one and by_blocks.root() == root(d[:done])


def test_compact_range_rejects_wrong_shape():
    with pytest.raises(ValueError):
        CompactRange(3, [EMPTY_ROOT])
    with pytest.raises(ValueError):
        CompactRange.from_bytes(1, b"\x00" * 31)


def test_a_million_leaves_is_fast_and_iterative():
    n = (1 << 20) + 3  # odd sizes exercise the carried-up right edge at the top levels
    d = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    started = time.perf_counter()
    top = root(d)
    tree = CompactRange()
    tree.extend(d)
    elapsed = time.perf_counter() - started
    assert tree.root() == top
    assert elapsed < budget(5), f"root + compact range of {n} leaves took {elapsed:.2f}s"
    proof = inclusion_proof(n - 1, d)
    assert verify_inclusion(n - 1, n, d[-1], proof, top)
