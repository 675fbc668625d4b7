"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and their verification.

    leaf hash  = SHA-256(0x00 || data)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")

Stdlib only, so the client (`hoop sessions verify`) uses the same code as the server.

Trees are read through a *node getter* ``get(level, index) -> bytes`` returning the hash of the
perfect, aligned subtree covering leaves ``[index << level, (index + 1) << level)``. The server
stores exactly those nodes (they never change once complete), so any proof for any past size can
be built from storage; :class:`MemoryTree` is the in-memory getter used by tests and the client.

:class:`Frontier` is the compact range of a growing log (one perfect subtree per set bit of the
size), enough to append in O(log n) and to compute the current root without reading the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeGetter = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def range_hash(get: NodeGetter, lo: int, hi: int) -> bytes:
    """MTH of leaves [lo, hi) where lo is aligned as in RFC 9162's recursive definition."""
    size = hi - lo
    if size <= 0:
        return EMPTY_ROOT
    if _is_pow2(size) and lo % size == 0:
        level = size.bit_length() - 1
        return get(level, lo >> level)
    k = _split(size)
    return node_hash(range_hash(get, lo, lo + k), range_hash(get, lo + k, hi))


def root(get: NodeGetter, size: int) -> bytes:
    return range_hash(get, 0, size)


def inclusion_proof(get: NodeGetter, index: int, size: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:size])."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    proof: list[bytes] = []

    def path(m: int, lo: int, hi: int) -> None:
        n = hi - lo
        if n <= 1:
            return
        k = _split(n)
        if m < k:
            path(m, lo, lo + k)
            proof.append(range_hash(get, lo + k, hi))
        else:
            path(m - k, lo + k, hi)
            proof.append(range_hash(get, lo, lo + k))

    path(index, 0, size)
    return proof


def consistency_proof(get: NodeGetter, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(size1, D[0:size2]); empty for size1 == 0 or size1 == size2."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    if size1 == 0 or size1 == size2:
        return proof

    def sub(m: int, lo: int, hi: int, whole: bool) -> None:
        n = hi - lo
        if m == n:
            if not whole:
                proof.append(range_hash(get, lo, hi))
            return
        k = _split(n)
        if m <= k:
            sub(m, lo, lo + k, whole)
            proof.append(range_hash(get, lo + k, hi))
        else:
            sub(m - k, lo + k, hi, False)
            proof.append(range_hash(get, lo, lo + k))

    sub(size1, 0, size2, True)
    return proof


def needed_nodes(build: Callable[[NodeGetter], object]) -> set[tuple[int, int]]:
    """The (level, index) nodes a proof/root computation reads: run it once with a recording
    getter, so a store can fetch them all in one query before running it for real."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return EMPTY_ROOT

    build(record)
    return wanted


def _hashes_ok(items: Iterable[bytes]) -> bool:
    return all(isinstance(h, (bytes, bytearray)) and len(h) == HASH_SIZE for h in items)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does `proof` show leaf hash `leaf` at `index` in the tree `expected_root`?"""
    if not 0 <= index < size or not _hashes_ok([leaf, expected_root, *proof]):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: is the tree (size2, root2) an append-only extension of (size1, root1)?"""
    if size1 < 0 or size2 < size1 or not _hashes_ok(proof):
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not _hashes_ok([root1, root2]) or not proof:
        return False
    path = list(proof)
    if _is_pow2(size1):
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


class MemoryTree:
    """All perfect subtree hashes of a list of leaf hashes; a NodeGetter for tests and clients."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append_hash(self, h: bytes) -> None:
        self.levels[0].append(h)
        level, index = 0, len(self.levels[0]) - 1
        while index & 1:
            parent = node_hash(self.levels[level][index - 1], self.levels[level][index])
            level += 1
            if len(self.levels) <= level:
                self.levels.append([])
            self.levels[level].append(parent)
            index >>= 1

    def append(self, data: bytes) -> None:
        self.append_hash(leaf_hash(data))

    def get(self, level: int, index: int) -> bytes:
        try:
            return self.levels[level][index]
        except IndexError:
            raise KeyError(f"no complete node at level {level} index {index}") from None

    def root(self, size: int | None = None) -> bytes:
        return root(self.get, self.size if size is None else size)


class Frontier:
    """The compact range of a log: [(level, hash)] of its perfect subtrees, largest first.

    ``append`` returns the new complete nodes [(level, index, hash)] (the leaf first) for storage.
    """

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError("frontier does not match the tree size")
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self.size
        created = [(0, index, leaf)]
        h, level = leaf, 0
        while index >> level & 1:
            h = node_hash(self.nodes.pop(), h)
            level += 1
            created.append((level, index >> level, h))
        self.nodes.append(h)
        self.size += 1
        return created

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for h in reversed(self.nodes[:-1]):
            r = node_hash(h, r)
        return r
