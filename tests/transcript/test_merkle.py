"""RFC 9162 hashing and proofs against the transparency-dev/merkle reference vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hoopcli.transcript import merkle

V = json.loads((Path(__file__).parent / "data" / "transparency_dev_vectors.json").read_text())
LEAVES = [bytes.fromhex(x) for x in V["leaves"]]
ROOTS = [bytes.fromhex(x) for x in V["roots"]]
SOME = bytes.fromhex(V["some_hash"])
EMPTY = bytes.fromhex(V["empty_root"])


def tree(n: int = 8) -> merkle.MemoryTree:
    t = merkle.MemoryTree()
    for d in LEAVES[:n]:
        t.append(d)
    return t


def test_empty_root_is_sha256_of_nothing() -> None:
    assert merkle.EMPTY_ROOT == EMPTY
    assert merkle.MemoryTree().root() == EMPTY


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_reference(size: int) -> None:
    assert tree().root(size) == ROOTS[size - 1]


@pytest.mark.parametrize("size", range(9))
def test_frontier_root_matches_tree(size: int) -> None:
    f = merkle.Frontier()
    created = []
    for d in LEAVES[:size]:
        created += f.append(merkle.leaf_hash(d))
    assert f.root() == (ROOTS[size - 1] if size else EMPTY)
    t = tree(size)
    for level, index, h in created:
        assert t.get(level, index) == h
    # a frontier restored from storage continues identically
    g = merkle.Frontier(f.size, f.nodes)
    assert g.root() == f.root()


def test_frontier_rejects_mismatched_state() -> None:
    with pytest.raises(ValueError):
        merkle.Frontier(3, [SOME])


@pytest.mark.parametrize("vec", V["inclusion"], ids=lambda v: f"{v['leaf']}of{v['size']}")
def test_inclusion_vectors(vec: dict) -> None:
    index, size = vec["leaf"] - 1, vec["size"]
    proof = [bytes.fromhex(p) for p in vec["proof"]]
    t = tree()
    assert merkle.inclusion_proof(t.get, index, size) == proof
    lh = merkle.leaf_hash(LEAVES[index])
    assert merkle.verify_inclusion(index, size, lh, proof, ROOTS[size - 1])


def corrupt_inclusion(index: int, size: int, proof: list[bytes], root: bytes, lh: bytes):
    yield index - 1, size, lh, proof, root
    yield index + 1, size, lh, proof, root
    yield index ^ 2, size, lh, proof, root
    yield index, size * 2, lh, proof, root
    yield index, size // 2, lh, proof, root
    yield index, size, b"WrongLeaf", proof, root
    yield index, size, lh, proof, EMPTY
    yield index, size, lh, proof, SOME
    yield index, size, lh, [*proof, b""], root
    yield index, size, lh, [*proof, root], root
    yield index, size, lh, [b"", *proof], root
    yield index, size, lh, [root, *proof], root
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        yield index, size, lh, bad, root
    if proof:
        yield index, size, lh, proof[:-1], root
    if len(proof) > 1:
        yield index, size, lh, [proof[0], SOME, *proof[1:]], root


@pytest.mark.parametrize("vec", V["inclusion"][1:], ids=lambda v: f"{v['leaf']}of{v['size']}")
def test_inclusion_rejects_corruptions(vec: dict) -> None:
    index, size = vec["leaf"] - 1, vec["size"]
    proof = [bytes.fromhex(p) for p in vec["proof"]]
    lh = merkle.leaf_hash(LEAVES[index])
    for probe in corrupt_inclusion(index, size, proof, ROOTS[size - 1], lh):
        assert not merkle.verify_inclusion(*probe), probe[:2]


@pytest.mark.parametrize("vec", V["consistency"], ids=lambda v: f"{v['size1']}to{v['size2']}")
def test_consistency_vectors(vec: dict) -> None:
    s1, s2 = vec["size1"], vec["size2"]
    proof = [bytes.fromhex(p) for p in vec["proof"]]
    assert merkle.consistency_proof(tree().get, s1, s2) == proof
    assert merkle.verify_consistency(s1, s2, ROOTS[s1 - 1], ROOTS[s2 - 1], proof)


@pytest.mark.parametrize("vec", [v for v in V["consistency"] if v["proof"]],
                         ids=lambda v: f"{v['size1']}to{v['size2']}")
def test_consistency_rejects_corruptions(vec: dict) -> None:
    s1, s2 = vec["size1"], vec["size2"]
    p = [bytes.fromhex(x) for x in vec["proof"]]
    r1, r2 = ROOTS[s1 - 1], ROOTS[s2 - 1]
    probes = [
        (s1 - 1, s2, r1, r2, p), (s1 + 1, s2, r1, r2, p), (s1 ^ 2, s2, r1, r2, p),
        (s1, s2 * 2, r1, r2, p), (s1, s2 // 2, r1, r2, p),
        (s1, s2, b"WrongRoot", r2, p), (s1, s2, r1, b"WrongRoot", p), (s1, s2, r2, r1, p),
        (s1, s2, r1, r2, []), (s1, s2, r1, r2, [*p, b""]), (s1, s2, r1, r2, [*p, r1]),
        (s1, s2, r1, r2, [*p, r2]), (s1, s2, r1, r2, [b"", *p]), (s1, s2, r1, r2, [r1, *p]),
        (s1, s2, r1, r2, [r2, *p]), (s1, s2, r1, r2, [p[0], *p]), (s1, s2, r1, r2, p[:-1]),
    ]
    for i in range(len(p)):
        bad = list(p)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((s1, s2, r1, r2, bad))
    for probe in probes:
        assert not merkle.verify_consistency(*probe), probe[:2]


def test_consistency_edge_cases() -> None:
    r1, r2 = SOME, EMPTY
    assert merkle.verify_consistency(0, 0, r1, r1, [])
    assert merkle.verify_consistency(0, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 0, r1, r2, [])
    assert not merkle.verify_consistency(2, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 2, r1, r2, [])
    assert not merkle.verify_consistency(0, 1, EMPTY, EMPTY, [EMPTY])
    assert not merkle.verify_consistency(1, 1, EMPTY, EMPTY, [EMPTY])


def test_inclusion_edge_cases() -> None:
    for index, size in [(0, 0), (1, 0), (2, 1)]:
        assert not merkle.verify_inclusion(index, size, SOME, [], EMPTY)
    data = merkle.leaf_hash(b"data")
    assert merkle.verify_inclusion(0, 1, data, [], data)
    assert not merkle.verify_inclusion(0, 1, b"", [], data)
    with pytest.raises(ValueError):
        merkle.inclusion_proof(tree().get, 8, 8)
    with pytest.raises(ValueError):
        merkle.consistency_proof(tree().get, 5, 3)


def test_all_proofs_of_a_larger_tree_roundtrip() -> None:
    t = merkle.MemoryTree(merkle.leaf_hash(str(i).encode()) for i in range(37))
    for size in range(1, 38):
        r = t.root(size)
        for i in range(size):
            p = merkle.inclusion_proof(t.get, i, size)
            assert merkle.verify_inclusion(i, size, t.get(0, i), p, r)
        for s1 in range(size + 1):
            p = merkle.consistency_proof(t.get, s1, size)
            assert merkle.verify_consistency(s1, size, t.root(s1), r, p)


def test_needed_nodes_lists_what_a_proof_reads() -> None:
    t = tree()
    nodes = merkle.needed_nodes(lambda g: merkle.inclusion_proof(g, 5, 8))
    assert nodes == {(0, 4), (1, 3), (2, 0)}
    assert all(t.get(*n) for n in nodes)
