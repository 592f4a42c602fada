"""KV-cache allocators behind one interface, so the scheduler can replay a trace through each.

Units are token slots. Every allocator keeps, per live sequence, its capacity ``cap`` (slots it can fill
without another call) and its final length, so the accounting categories are exact at any instant:

* ``owned_slots``     slots held by live sequences, shared slots counted once (excludes buddy slack)
* ``slack_slots``     buddy rounding inside allocated chunks (external fragmentation)
* ``internal_slots``  owned slots that will never be filled (cap beyond the final length)
* ``cached_slots``    freed blocks kept for prefix reuse (reclaimable)
* ``free_slots``      the rest of the pool
* ``shared_slots``    slots counted more than once by the per-sequence view (sharing discount)

Sequences only grow; growth is announced with ``extend(key, length)`` when ``length`` exceeds ``cap``,
which lets the scheduler skip per-token calls (a paged sequence needs one call per block).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from vramplan.errors import InputError


def next_pow2(x: int) -> int:
    """Smallest power of two >= x (x >= 1)."""
    return 1 << (max(1, x) - 1).bit_length()


@dataclass(frozen=True)
class SwapHandle:
    """What a swapped-out group needs to come back: per sequence, indices into ``unique`` blocks."""

    tables: tuple[tuple[int, ...], ...]
    unique_hashes: tuple[Hashable | None, ...]
    caps: tuple[int, ...]
    finals: tuple[int, ...]
    slots: int


class Allocator(ABC):
    """Common bookkeeping: capacity and internal-fragmentation aggregates per sequence."""

    name: str = "base"
    grows_on_demand: bool = False  # memory is taken as tokens arrive (else reserved at admission)

    def __init__(self, capacity_slots: int) -> None:
        if capacity_slots < 1:
            raise InputError(
                f"the KV pool holds {capacity_slots} token slots; it needs at least one. "
                "Give more KV memory or a smaller kv_bytes_per_token."
            )
        self.capacity = capacity_slots
        self.cap: dict[int, int] = {}
        self.final: dict[int, int] = {}
        self.internal_slots = 0
        self.logical_slots = 0  # sum of cap over live sequences

    # -- shared helpers ---------------------------------------------------------------------------
    def _set_cap(self, key: int, cap: int) -> None:
        old = self.cap.get(key)
        fin = self.final[key]
        if old is not None:
            self.logical_slots -= old
            if old >= fin:
                self.internal_slots -= old - fin
        self.cap[key] = cap
        self.logical_slots += cap
        if cap >= fin:
            self.internal_slots += cap - fin

    def _drop_cap(self, key: int) -> None:
        old = self.cap.pop(key)
        fin = self.final.pop(key)
        self.logical_slots -= old
        if old >= fin:
            self.internal_slots -= old - fin

    # -- interface --------------------------------------------------------------------------------
    @abstractmethod
    def admit(
        self, key: int, length: int, final_len: int, prompt_len: int,
        prefix: tuple[int, int] | None = None,
    ) -> bool:
        """Allocate for a new sequence holding ``length`` tokens; False (no change) if no room.

        ``prefix`` = (system prompt id, its length): the tokens an allocator may share by content.
        """

    @abstractmethod
    def fork(self, parent: int, child: int, length: int) -> bool:
        """Make ``child`` a copy of ``parent`` (``length`` tokens), sharing what can be shared."""

    @abstractmethod
    def extend(self, key: int, length: int) -> bool:
        """Make room for ``length`` tokens in the sequence; False (no change) if no room."""

    @abstractmethod
    def free(self, key: int) -> None:
        """Release the sequence."""

    def refork(self, key: int, source: int, length: int) -> bool:
        """Replace ``key``'s contents by a copy of ``source`` (beam reselection)."""
        final = self.final[key]
        self.free(key)
        ok = self.fork(source, key, length)
        if ok:
            self._set_final(key, final)
        return ok

    def _set_final(self, key: int, final: int) -> None:
        cap = self.cap[key]
        self._drop_cap(key)
        self.final[key] = final
        self._set_cap(key, cap)

    @abstractmethod
    def swap_out(self, keys: Sequence[int]) -> SwapHandle:
        """Free the sequences' GPU memory and describe what to restore."""

    @abstractmethod
    def swap_in(self, keys: Sequence[int], handle: SwapHandle) -> bool:
        """Restore swapped sequences; False (no change) if no room."""

    @abstractmethod
    def fits_ever(self, final_len: int, prompt_len: int, num_seqs: int) -> bool:
        """Whether a group could run alone in an empty pool (else it is rejected)."""

    @property
    @abstractmethod
    def owned_slots(self) -> int: ...

    @property
    def slack_slots(self) -> int:
        return 0

    @property
    def cached_slots(self) -> int:
        return 0

    @property
    def shared_slots(self) -> int:
        return self.logical_slots - self.owned_slots

    @property
    def free_slots(self) -> int:
        return self.capacity - self.owned_slots - self.slack_slots - self.cached_slots

    def capacity_of(self, key: int) -> int:
        return self.cap[key]


# ------------------------------------------------------------------------------------------------
class BuddyPool:
    """Binary buddy allocator over a pool of slots that need not be a power of two.

    The pool is cut greedily into aligned power-of-two regions (15,728 = 8192 + 4096 + ... + 16); a
    region never merges with its neighbour, which is why a 2048-slot reservation leaves the 1,392-slot
    tail of a 15,728-slot pool unusable: real external fragmentation.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free_lists: dict[int, set[int]] = {}
        self.tops: set[tuple[int, int]] = set()
        offset = 0
        for order in range(capacity.bit_length() - 1, -1, -1):
            if capacity & (1 << order):
                self.free_lists.setdefault(order, set()).add(offset)
                self.tops.add((offset, order))
                offset += 1 << order
        self.max_order = capacity.bit_length() - 1
        self.free_total = capacity

    def alloc(self, size: int) -> tuple[int, int] | None:
        order = (max(1, size) - 1).bit_length()
        for o in range(order, self.max_order + 1):
            lst = self.free_lists.get(o)
            if lst:
                off = min(lst)  # lowest address first keeps the layout deterministic
                lst.remove(off)
                while o > order:
                    o -= 1
                    self.free_lists.setdefault(o, set()).add(off + (1 << o))
                self.free_total -= 1 << order
                return off, order
        return None

    def release(self, off: int, order: int) -> None:
        self.free_total += 1 << order
        while (off, order) not in self.tops:
            buddy = off ^ (1 << order)
            lst = self.free_lists.get(order)
            if lst is None or buddy not in lst:
                break
            lst.remove(buddy)
            off = min(off, buddy)
            order += 1
        self.free_lists.setdefault(order, set()).add(off)

    def largest_free(self) -> int:
        return max((1 << o for o, s in self.free_lists.items() if s), default=0)


class ContiguousAllocator(Allocator):
    """Orca-style: one contiguous reservation per sequence, made at admission, from a buddy pool."""

    name = "contiguous"

    def __init__(self, capacity_slots: int, max_len: int) -> None:
        super().__init__(capacity_slots)
        self.max_len = max_len
        self.pool = BuddyPool(capacity_slots)
        self.chunks: dict[int, tuple[int, int]] = {}
        self._owned = 0
        self._slack = 0

    def reservation(self, prompt_len: int, final_len: int) -> int:
        raise NotImplementedError

    def _take(self, key: int, size: int, final: int) -> bool:
        got = self.pool.alloc(size)
        if got is None:
            return False
        self.chunks[key] = got
        self.final[key] = final
        self._set_cap(key, size)
        self._owned += size
        self._slack += (1 << got[1]) - size
        return True

    def admit(self, key, length, final_len, prompt_len, prefix=None):  # type: ignore[override]
        size = max(length, self.reservation(prompt_len, final_len))
        return self._take(key, size, final_len)

    def fork(self, parent: int, child: int, length: int) -> bool:
        return self._take(child, self.cap[parent], self.final[parent])

    def refork(self, key: int, source: int, length: int) -> bool:
        return True  # same-size reservations: copying a beam's contents needs no memory

    def extend(self, key: int, length: int) -> bool:
        return length <= self.cap[key]

    def free(self, key: int) -> None:
        off, order = self.chunks.pop(key)
        size = self.cap[key]
        self._owned -= size
        self._slack -= (1 << order) - size
        self.pool.release(off, order)
        self._drop_cap(key)

    def swap_out(self, keys: Sequence[int]) -> SwapHandle:
        caps = tuple(self.cap[k] for k in keys)
        finals = tuple(self.final[k] for k in keys)
        for k in keys:
            self.free(k)
        return SwapHandle(tuple((i,) for i in range(len(keys))), (None,) * len(keys), caps, finals,
                          sum(caps))

    def swap_in(self, keys: Sequence[int], handle: SwapHandle) -> bool:
        done: list[int] = []
        for k, cap, fin in zip(keys, handle.caps, handle.finals):
            if not self._take(k, cap, fin):
                for d in done:
                    self.free(d)
                return False
            done.append(k)
        return True

    def fits_ever(self, final_len: int, prompt_len: int, num_seqs: int) -> bool:
        size = next_pow2(max(final_len, self.reservation(prompt_len, final_len)))
        return size <= (1 << self.pool.max_order) and size * num_seqs <= self.capacity

    @property
    def owned_slots(self) -> int:
        return self._owned

    @property
    def slack_slots(self) -> int:
        return self._slack


class MaxAllocator(ContiguousAllocator):
    """Orca (Max): reserve the model's maximum sequence length for every request."""

    name = "max"

    def reservation(self, prompt_len: int, final_len: int) -> int:
        return self.max_len


class Pow2Allocator(ContiguousAllocator):
    """Orca (Pow2): reserve the prompt plus the output rounded up to a power of two (<= max_len)."""

    name = "pow2"

    def reservation(self, prompt_len: int, final_len: int) -> int:
        return min(self.max_len, prompt_len + next_pow2(final_len - prompt_len))


class OracleAllocator(ContiguousAllocator):
    """Orca (Oracle): reserve exactly prompt + output (the output length is known in advance)."""

    name = "oracle"

    def reservation(self, prompt_len: int, final_len: int) -> int:
        return final_len


# ------------------------------------------------------------------------------------------------
class PagedAllocator(Allocator):
    """vLLM PagedAttention: fixed blocks, allocated on demand, shared by reference count.

    * full blocks of a shared prompt are found by hash (prefix caching) and shared;
    * ``fork`` shares every full block and copies the partial last one at once (V0 copy-on-write,
      taken eagerly: the first write after a fork always hits that block);
    * freed hashed blocks stay reusable in an LRU queue until a new allocation needs them.
    """

    name = "paged"
    grows_on_demand = True

    def __init__(self, capacity_slots: int, block_size: int = 16, prefix_caching: bool = True) -> None:
        super().__init__(capacity_slots)
        if block_size < 1:
            raise InputError(f"block_size must be >= 1 token, got {block_size}.")
        self.B = block_size
        self.num_blocks = capacity_slots // block_size
        if self.num_blocks < 1:
            raise InputError(
                f"a {capacity_slots}-slot KV pool cannot hold one {block_size}-token block; "
                "lower block_size or give more KV memory."
            )
        self.prefix_caching = prefix_caching
        self.free_blocks: list[int] = list(range(self.num_blocks - 1, -1, -1))
        self.ref = [0] * self.num_blocks
        self.tables: dict[int, list[int]] = {}
        self.hash_of: dict[int, Hashable] = {}
        self.block_of: dict[Hashable, int] = {}
        self.lru: OrderedDict[int, None] = OrderedDict()
        self.used_blocks = 0  # ref > 0

    # capacity lost to the pool's tail (capacity not a multiple of B) is reported as slack
    @property
    def slack_slots(self) -> int:
        return self.capacity - self.num_blocks * self.B

    @property
    def owned_slots(self) -> int:
        return self.used_blocks * self.B

    @property
    def cached_slots(self) -> int:
        return len(self.lru) * self.B

    def available_blocks(self) -> int:
        return len(self.free_blocks) + len(self.lru)

    def _new_block(self) -> int:
        if self.free_blocks:
            b = self.free_blocks.pop()
        else:
            b, _ = self.lru.popitem(last=False)  # evict the least recently freed cached block
            h = self.hash_of.pop(b)
            del self.block_of[h]
        self.ref[b] = 1
        self.used_blocks += 1
        return b

    def _incref(self, b: int) -> None:
        if self.ref[b] == 0:
            self.lru.pop(b)
            self.used_blocks += 1
        self.ref[b] += 1

    def _decref(self, b: int) -> None:
        self.ref[b] -= 1
        if self.ref[b] == 0:
            self.used_blocks -= 1
            if b in self.hash_of:
                self.lru[b] = None
            else:
                self.free_blocks.append(b)

    def admit(self, key, length, final_len, prompt_len, prefix=None):  # type: ignore[override]
        need = -(-length // self.B)
        hits: list[int] = []
        nfull, pid = 0, -1
        if self.prefix_caching and prefix is not None:
            pid, nfull = prefix[0], min(prefix[1], length) // self.B  # only full blocks are shared
            for i in range(nfull):
                b = self.block_of.get((pid, i))
                if b is None:
                    break
                hits.append(b)
        cached_hits = sum(1 for b in hits if self.ref[b] == 0)
        if need - len(hits) > self.available_blocks() - cached_hits:
            return False
        for b in hits:
            self._incref(b)
        table = list(hits)
        for i in range(len(hits), need):
            b = self._new_block()
            table.append(b)
            if i < nfull:
                h = (pid, i)
                if h not in self.block_of:
                    self.block_of[h] = b
                    self.hash_of[b] = h
        self.tables[key] = table
        self.final[key] = final_len
        self._set_cap(key, need * self.B)
        return True

    def fork(self, parent: int, child: int, length: int) -> bool:
        src = self.tables[parent]
        cap = self.cap[parent]
        partial = bool(src) and cap > length  # the last block has slots still to be written
        if partial and self.available_blocks() < 1:
            return False
        table = list(src)
        for b in (table[:-1] if partial else table):
            self._incref(b)
        if partial:
            table[-1] = self._new_block()  # copy-on-write of the partial last block
        self.tables[child] = table
        self.final[child] = self.final[parent]
        self._set_cap(child, cap)
        return True

    def extend(self, key: int, length: int) -> bool:
        cap = self.cap[key]
        if length <= cap:
            return True
        need = -(-(length - cap) // self.B)
        if need > self.available_blocks():
            return False
        table = self.tables[key]
        for _ in range(need):
            table.append(self._new_block())
        self._set_cap(key, cap + need * self.B)
        return True

    def free(self, key: int) -> None:
        # release the tail first so, among cached blocks, the end of a chain is evicted first
        for b in reversed(self.tables.pop(key)):
            self._decref(b)
        self._drop_cap(key)

    def swap_out(self, keys: Sequence[int]) -> SwapHandle:
        index: dict[int, int] = {}
        hashes: list[Hashable | None] = []
        tables = []
        for k in keys:
            row = []
            for b in self.tables[k]:
                if b not in index:
                    index[b] = len(hashes)
                    hashes.append(self.hash_of.get(b))
                row.append(index[b])
            tables.append(tuple(row))
        caps = tuple(self.cap[k] for k in keys)
        finals = tuple(self.final[k] for k in keys)
        for k in keys:
            self.free(k)
        return SwapHandle(tuple(tables), tuple(hashes), caps, finals, len(hashes) * self.B)

    def swap_in(self, keys: Sequence[int], handle: SwapHandle) -> bool:
        hit = [self.block_of.get(h) if h is not None else None for h in handle.unique_hashes]
        missing = sum(1 for b in hit if b is None)
        cached_hits = sum(1 for b in hit if b is not None and self.ref[b] == 0)
        if missing > self.available_blocks() - cached_hits:
            return False
        phys: list[int] = []
        for b, h in zip(hit, handle.unique_hashes):
            if b is not None:
                self._incref(b)
                phys.append(b)
            else:
                nb = self._new_block()
                if h is not None:
                    self.block_of[h] = nb
                    self.hash_of[nb] = h
                phys.append(nb)
        counts = [0] * len(phys)
        for row in handle.tables:
            for i in row:
                counts[i] += 1
        for i, c in enumerate(counts):  # one reference per table entry; _new/_incref gave one
            for _ in range(c - 1):
                self._incref(phys[i])
            if c == 0:
                self._decref(phys[i])
        for k, row, cap, fin in zip(keys, handle.tables, handle.caps, handle.finals):
            self.tables[k] = [phys[i] for i in row]
            self.final[k] = fin
            self._set_cap(k, cap)
        return True

    def fits_ever(self, final_len: int, prompt_len: int, num_seqs: int) -> bool:
        return num_seqs * -(-final_len // self.B) <= self.num_blocks

    def check_invariants(self) -> None:
        """Test hook: reference counts equal table references; no block both free and used."""
        counts = [0] * self.num_blocks
        for t in self.tables.values():
            for b in t:
                counts[b] += 1
        assert counts == self.ref, "reference counts disagree with block tables"
        free = set(self.free_blocks)
        assert len(free) == len(self.free_blocks), "a block is on the free list twice"
        assert not free & set(self.lru), "a block is both free and cached"
        assert all(self.ref[b] == 0 for b in free | set(self.lru)), "a free block is referenced"
        assert self.used_blocks == sum(1 for r in self.ref if r > 0)
        assert len(free) + len(self.lru) + self.used_blocks == self.num_blocks


class RadixAllocator(PagedAllocator):
    """SGLang RadixAttention: token-granular pool (page size 1) with prefix sharing and LRU eviction.

    With page size 1 the radix tree's shared prefixes are exactly the 1-token "blocks" of a hash chain,
    so the tree is kept as that chain (``block_of``); unreferenced nodes are evicted LRU, leaf first.
    """

    name = "radix"

    def __init__(self, capacity_slots: int, prefix_caching: bool = True) -> None:
        super().__init__(capacity_slots, block_size=1, prefix_caching=prefix_caching)


ALLOCATORS = ("max", "pow2", "oracle", "paged", "radix")


def make_allocator(name: str, capacity_slots: int, max_len: int, block_size: int = 16,
                   prefix_caching: bool = True) -> Allocator:
    """Build an allocator by name (one of ``ALLOCATORS``)."""
    key = name.lower()
    if key == "max":
        return MaxAllocator(capacity_slots, max_len)
    if key == "pow2":
        return Pow2Allocator(capacity_slots, max_len)
    if key == "oracle":
        return OracleAllocator(capacity_slots, max_len)
    if key == "paged":
        return PagedAllocator(capacity_slots, block_size, prefix_caching)
    if key == "radix":
        return RadixAllocator(capacity_slots, prefix_caching)
    raise InputError(f"unknown allocator {name!r}; choose one of {', '.join(ALLOCATORS)}.")
