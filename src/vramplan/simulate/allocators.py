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
which lets the scheduler skip per-token calls (a paged sequence needs one call per block). A running
group (n samples or beams) grows with ``extend_group``: all of its sequences or none, so they keep one
capacity (the scheduler times the group's next growth from it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import ClassVar

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
    fans_out: bool = False  # n > 1 runs as n independent requests (no fork), e.g. TGI
    last_hit_tokens: int = 0  # tokens the last ``admit`` found in the prefix cache (not recomputed)

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
        self,
        key: int,
        length: int,
        final_len: int,
        prompt_len: int,
        prefix: tuple[int, int] | None = None,
        content: tuple[Hashable, Hashable, bool] | None = None,
    ) -> bool:
        """Allocate for a new sequence holding ``length`` tokens; False (no change) if no room.

        ``prefix`` = (system prompt id, its length): the tokens an allocator may share by content.
        ``content`` = (id of this request's prompt, id of this sequence's generated tokens, eager): lets
        a prefix cache key the sequence's own full blocks, so sibling requests (V1 parallel sampling)
        and the same request after a recompute preemption find them again. ``eager`` keys the prompt
        blocks at admission (siblings are about to look them up); otherwise only ``cache_blocks``
        keys them, which saves the cache bookkeeping for blocks nobody will look up.
        Sets ``last_hit_tokens``.
        """

    def cache_blocks(self, key: int, length: int) -> None:
        """Key the sequence's full blocks up to ``length`` tokens by content before it is freed."""
        return  # allocators without a prefix cache keep nothing

    @abstractmethod
    def fork(self, parent: int, child: int, length: int) -> bool:
        """Make ``child`` a copy of ``parent`` (``length`` tokens), sharing what can be shared."""

    @abstractmethod
    def extend(self, key: int, length: int) -> bool:
        """Make room for ``length`` tokens in the sequence; False (no change) if no room."""

    @abstractmethod
    def extend_group(self, keys: Sequence[int], length: int) -> bool:
        """``extend`` every sequence of a group to ``length`` tokens, all or none; False (no change) if
        the pool cannot hold them all (vLLM V0's ``can_append_slots`` checks the whole group too)."""

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

    def admit(self, key, length, final_len, prompt_len, prefix=None, content=None):
        size = max(length, self.reservation(prompt_len, final_len))
        return self._take(key, size, final_len)

    def fork(self, parent: int, child: int, length: int) -> bool:
        return self._take(child, self.cap[parent], self.final[parent])

    def refork(self, key: int, source: int, length: int) -> bool:
        return True  # same-size reservations: copying a beam's contents needs no memory

    def extend(self, key: int, length: int) -> bool:
        return length <= self.cap[key]

    def extend_group(self, keys: Sequence[int], length: int) -> bool:
        return all(length <= self.cap[k] for k in keys)

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
        return SwapHandle(
            tuple((i,) for i in range(len(keys))), (None,) * len(keys), caps, finals, sum(caps)
        )

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

    def __init__(
        self, capacity_slots: int, block_size: int = 16, prefix_caching: bool = True
    ) -> None:
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
        self.meta: dict[
            int, list
        ] = {}  # key -> [sys id, sys len, prompt len, content ids, blocks keyed]

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

    def _reserve(self, prompt_len: int, final_len: int) -> int:
        """Slots taken at admission whatever the current length (0: paged memory grows on demand)."""
        return 0

    def _block_key(self, i: int, m: list) -> Hashable:
        """Content key of block ``i``: system prompt, this request's prompt, or this sequence's tokens."""
        end = (i + 1) * self.B
        if end <= m[1]:
            return (m[0], i)
        return (m[3][0] if end <= m[2] else m[3][1], i)

    def admit(self, key, length, final_len, prompt_len, prefix=None, content=None):
        B = self.B
        need = -(-max(length, self._reserve(prompt_len, final_len)) // B)
        hits: list[int] = []
        nkeyed = 0
        m: list | None = None
        if self.prefix_caching and (prefix is not None or content is not None):
            pid, sys_len = prefix if prefix is not None else (-1, 0)
            sys_len = min(sys_len, length)
            nkeyed = (
                length if content is not None and content[2] else sys_len
            ) // B  # full blocks only
            m = [pid, sys_len, prompt_len, content, nkeyed]
            # the last token is always recomputed (its logits are needed), as vLLM V1 does
            for i in range(
                (length - 1) // B if content is not None else min(nkeyed, (length - 1) // B)
            ):
                b = self.block_of.get(self._block_key(i, m))
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
            if i < nkeyed:
                h = self._block_key(i, m)
                if h not in self.block_of:
                    self.block_of[h] = b
                    self.hash_of[b] = h
        if m is not None and content is not None:
            self.meta[key] = m
        self.tables[key] = table
        self.final[key] = final_len
        self._set_cap(key, need * B)
        self.last_hit_tokens = len(hits) * B
        return True

    def cache_blocks(self, key: int, length: int) -> None:
        m = self.meta.get(key)
        if m is None:
            return
        table = self.tables[key]
        for i in range(m[4], min(length // self.B, len(table))):
            b = table[i]
            if b in self.hash_of:
                continue
            h = self._block_key(i, m)
            if h not in self.block_of:
                self.block_of[h] = b
                self.hash_of[b] = h
        m[4] = max(m[4], length // self.B)

    def fork(self, parent: int, child: int, length: int) -> bool:
        src = self.tables[parent]
        cap = self.cap[parent]
        partial = bool(src) and cap > length  # the last block has slots still to be written
        if partial and self.available_blocks() < 1:
            return False
        table = list(src)
        for b in table[:-1] if partial else table:
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

    def extend_group(self, keys: Sequence[int], length: int) -> bool:
        B, cap = self.B, self.cap
        need = sum(-(-(length - cap[k]) // B) for k in keys if length > cap[k])
        if need > self.available_blocks():
            return False
        if need:
            for k in keys:
                self.extend(k, length)
        return True

    def free(self, key: int) -> None:
        # release the tail first so, among cached blocks, the end of a chain is evicted first
        for b in reversed(self.tables.pop(key)):
            self._decref(b)
        self.meta.pop(key, None)
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


class TGIAllocator(PagedAllocator):
    """Hugging Face TGI (v3 router, ``block_allocator.rs``): worst case reserved up front, no preemption.

    * a request takes ``ceil(min(input + max_new_tokens, window) / B)`` blocks at admission and keeps
      them until it ends, so it never grows and is never preempted; one that does not fit waits (FCFS);
    * ``B`` comes from the attention backend (flashinfer 1, paged 16, flashdecoding 256);
    * block 0 is reserved for health checks (reported with the pool tail as slack);
    * with prefix caching on (the launcher's default, off for the ``paged`` backend) the radix
      allocator shares full blocks of prompt prefixes, found by content as in ``PagedAllocator``;
    * ``n`` > 1 (``best_of``) runs as independent requests that share the prompt only by prefix cache.

    ``max_new_tokens`` None reserves each request's own output length (what benchmark clients send);
    a number reserves ``prompt + max_new_tokens`` (at least the real output, at most ``max_len``, the
    simulator's window: it has no sliding-window models).
    """

    name = "tgi"
    grows_on_demand = False
    fans_out = True
    BACKEND_BLOCK: ClassVar[dict[str, int]] = {"flashinfer": 1, "paged": 16, "flashdecoding": 256}

    def __init__(
        self,
        capacity_slots: int,
        max_len: int,
        attention_backend: str = "flashinfer",
        prefix_caching: bool = True,
        max_new_tokens: int | None = None,
    ) -> None:
        backend = attention_backend.lower()
        if backend not in self.BACKEND_BLOCK:
            raise InputError(
                f"unknown TGI attention backend {attention_backend!r}; use "
                f"{', '.join(self.BACKEND_BLOCK)}."
            )
        if max_new_tokens is not None and max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
        block = self.BACKEND_BLOCK[backend]
        if capacity_slots < 2 * block:
            raise InputError(
                f"a {capacity_slots}-slot KV pool cannot hold two {block}-token TGI blocks "
                "(block 0 is reserved); give more KV memory."
            )
        super().__init__(capacity_slots, block, prefix_caching and backend != "paged")
        self.attention_backend = backend
        self.max_len = max_len
        self.max_new_tokens = max_new_tokens
        self.num_blocks -= 1  # block 0: health checks
        self.free_blocks = list(range(self.num_blocks - 1, -1, -1))
        self.ref = [0] * self.num_blocks

    def _reserve(self, prompt_len: int, final_len: int) -> int:
        if self.max_new_tokens is None:
            return final_len
        return max(final_len, min(prompt_len + self.max_new_tokens, self.max_len))

    def reservation_of(self, prompt_len: int, final_len: int) -> int:
        """Slots a request takes at admission (before rounding up to blocks)."""
        return self._reserve(prompt_len, final_len)

    def fork(self, parent: int, child: int, length: int) -> bool:
        """An independent copy: only full blocks already written are shared, and only by prefix cache."""
        src = self.tables[parent]
        cap = self.cap[parent]
        shared = min(length // self.B, len(src)) if self.prefix_caching else 0
        if len(src) - shared > self.available_blocks():
            return False
        table = list(src[:shared])
        for b in table:
            self._incref(b)
        table += [self._new_block() for _ in range(len(src) - shared)]
        self.tables[child] = table
        self.final[child] = self.final[parent]
        self._set_cap(child, cap)
        return True

    def fits_ever(self, final_len: int, prompt_len: int, num_seqs: int) -> bool:
        return num_seqs * -(-self._reserve(prompt_len, final_len) // self.B) <= self.num_blocks


ALLOCATORS = ("max", "pow2", "oracle", "paged", "radix", "tgi")


def make_allocator(
    name: str,
    capacity_slots: int,
    max_len: int,
    block_size: int = 16,
    prefix_caching: bool = True,
    attention_backend: str = "flashinfer",
    max_new_tokens: int | None = None,
) -> Allocator:
    """Build an allocator by name (one of ``ALLOCATORS``); TGI's block size follows its backend."""
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
    if key == "tgi":
        return TGIAllocator(
            capacity_slots, max_len, attention_backend, prefix_caching, max_new_tokens
        )
    raise InputError(f"unknown allocator {name!r}; choose one of {', '.join(ALLOCATORS)}.")
