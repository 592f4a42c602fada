"""Allocator invariants under hypothesis-generated operation traces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.simulate.allocators import (
    BuddyPool,
    MaxAllocator,
    OracleAllocator,
    PagedAllocator,
    Pow2Allocator,
    RadixAllocator,
    TGIAllocator,
    make_allocator,
    next_pow2,
)

ops = st.lists(
    st.tuples(
        st.sampled_from(["admit", "grow", "fork", "free", "swap", "refork"]),
        st.integers(0, 10_000),
        st.integers(1, 300),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=120,
)


def _check_accounting(a) -> None:
    assert a.owned_slots + a.slack_slots + a.cached_slots + a.free_slots == a.capacity
    assert 0 <= a.owned_slots <= a.capacity
    assert a.free_slots >= 0 and a.internal_slots >= 0 and a.shared_slots >= 0


def _replay(a, trace) -> None:
    """Drive an allocator with random operations, mirroring each live sequence's length."""
    lengths: dict[int, int] = {}
    swapped: list[tuple[list[int], object]] = []
    next_key = 0
    for op, pick, size, pfx in trace:
        live = sorted(lengths)
        if op == "admit" or not live:
            final = min(size * 2, 500)
            prefix = (pfx, 40) if pfx else None
            if a.admit(next_key, size, max(final, size), size, prefix):
                lengths[next_key] = size
            next_key += 1
        else:
            key = live[pick % len(live)]
            if op == "grow":
                new = lengths[key] + 1 + pick % 40
                if a.extend(key, new):
                    lengths[key] = new
                    assert a.capacity_of(key) >= new
            elif op == "fork":
                if a.fork(key, next_key, lengths[key]):
                    lengths[next_key] = lengths[key]
                next_key += 1
            elif op == "refork" and len(live) > 1:
                src = live[(pick + 1) % len(live)]
                if lengths[src] == lengths[key] and a.refork(key, src, lengths[src]):
                    pass
            elif op == "swap":
                keys = [key]
                handle = a.swap_out(keys)
                swapped.append((keys, handle, lengths.pop(key)))
            else:
                a.free(key)
                del lengths[key]
        if swapped and pick % 3 == 0:
            keys, handle, ln = swapped.pop()
            if a.swap_in(keys, handle):
                lengths[keys[0]] = ln
        for k, ln in lengths.items():
            assert a.capacity_of(k) >= ln
        _check_accounting(a)
        if isinstance(a, PagedAllocator):
            a.check_invariants()
    for k in list(lengths):
        a.free(k)
    _check_accounting(a)
    assert a.owned_slots == 0 and a.internal_slots == 0 and a.logical_slots == 0
    if isinstance(a, PagedAllocator):
        a.check_invariants()
        assert all(r == 0 for r in a.ref)
    else:
        assert a.pool.free_total == a.capacity


@settings(max_examples=150, deadline=None)
@given(ops, st.sampled_from([1, 4, 16]), st.booleans())
def test_paged_invariants(trace, block, caching) -> None:
    _replay(PagedAllocator(1000, block, prefix_caching=caching), trace)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_radix_invariants(trace) -> None:
    _replay(RadixAllocator(700), trace)


@settings(max_examples=100, deadline=None)
@given(ops, st.sampled_from([MaxAllocator, Pow2Allocator, OracleAllocator]))
def test_contiguous_invariants(trace, cls) -> None:
    _replay(cls(3000, 512), trace)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.lists(st.tuples(st.booleans(), st.integers(1, 700)), max_size=80))
def test_buddy_never_overlaps_and_merges_back(capacity, ops_) -> None:
    pool = BuddyPool(capacity)
    held: list[tuple[int, int]] = []
    for take, size in ops_:
        if take or not held:
            got = pool.alloc(size)
            if got is not None:
                off, order = got
                assert (1 << order) >= size and off % (1 << order) == 0
                assert off + (1 << order) <= capacity
                for o2, r2 in held:
                    assert off + (1 << order) <= o2 or o2 + (1 << r2) <= off
                held.append(got)
        else:
            pool.release(*held.pop(size % len(held)))
        assert pool.free_total == capacity - sum(1 << r for _, r in held)
    for h in held:
        pool.release(*h)
    assert sorted(pool.tops) == sorted((o, r) for r, s in pool.free_lists.items() for o in s)


def test_reservations() -> None:
    assert next_pow2(25) == 32 and next_pow2(32) == 32 and next_pow2(1) == 1
    assert MaxAllocator(20000, 2048).reservation(7, 100) == 2048
    assert Pow2Allocator(20000, 2048).reservation(100, 125) == 132
    assert Pow2Allocator(20000, 2048).reservation(500, 2000) == 2048
    assert OracleAllocator(20000, 2048).reservation(7, 100) == 100


def test_max_leaves_pool_tail_unusable() -> None:
    a = MaxAllocator(15728, 2048)  # the paper's 12 GiB / 800 KiB pool
    seats = 0
    while a.admit(seats, 10, 100, 10):
        seats += 1
    assert seats == 7 and a.free_slots == 15728 - 7 * 2048


def test_paged_waste_below_one_block_per_sequence() -> None:
    a = PagedAllocator(16_000, 16, prefix_caching=False)
    lengths = {k: 1 + 37 * k % 500 for k in range(20)}
    for k, ln in lengths.items():
        assert a.admit(k, ln, 600, ln)
    for _ in range(100):
        for k, ln in list(lengths.items()):
            lengths[k] = ln + 1
            assert a.extend(k, ln + 1)
        waste = a.owned_slots - sum(lengths.values())
        assert 0 <= waste < 16 * len(lengths)
        for k, ln in lengths.items():
            assert a.capacity_of(k) - ln < 16


def test_prefix_sharing_and_fork_copy_on_write() -> None:
    a = PagedAllocator(1600, 16)
    assert a.admit(1, 40, 100, 40, (0, 32))  # 2 full system-prompt blocks + 1 partial
    assert a.admit(2, 40, 100, 40, (0, 32))
    assert a.used_blocks == 4 and a.shared_slots == 32
    assert a.fork(1, 3, 40)  # shares 2 full blocks, copies the partial one
    assert a.used_blocks == 5
    a.free(1), a.free(2), a.free(3)
    assert a.used_blocks == 0 and a.cached_slots == 32  # system prompt kept for reuse (LRU)
    assert a.admit(4, 40, 100, 40, (0, 32)) and a.cached_slots == 0 and a.used_blocks == 3
    a.check_invariants()


def test_make_allocator_names() -> None:
    for name in ("max", "pow2", "oracle", "paged", "radix", "tgi"):
        assert make_allocator(name, 4096, 2048).name == name


@settings(max_examples=100, deadline=None)
@given(
    ops,
    st.sampled_from(["flashinfer", "paged", "flashdecoding"]),
    st.booleans(),
    st.sampled_from([None, 64]),
)
def test_tgi_invariants(trace, backend, caching, max_new) -> None:
    _replay(TGIAllocator(6000, 1024, backend, caching, max_new), trace)


def test_tgi_reserves_up_front_by_backend_block() -> None:
    for backend, block in (("flashinfer", 1), ("paged", 16), ("flashdecoding", 256)):
        a = TGIAllocator(4096, 2048, backend)
        assert block == a.B and a.num_blocks == 4096 // block - 1  # block 0 kept for health checks
        assert a.slack_slots == 4096 - a.num_blocks * block
        assert a.admit(1, 100, 300, 100)  # prompt 100, output 200: ceil(300 / B) blocks now
        assert a.capacity_of(1) == -(-300 // block) * block and a.extend(1, 300)
        assert a.internal_slots == a.capacity_of(1) - 300
    assert TGIAllocator(4096, 2048, max_new_tokens=500).reservation_of(100, 300) == 600
    assert TGIAllocator(4096, 1000, max_new_tokens=5000).reservation_of(100, 300) == 1000  # capped
    assert not TGIAllocator(4096, 2048, "paged").prefix_caching  # the launcher's rule


def test_tgi_waits_instead_of_growing_and_shares_prefixes() -> None:
    a = TGIAllocator(1001, 2048)  # 1000 usable one-token blocks
    assert a.admit(1, 300, 600, 300, (7, 200)) and a.owned_slots == 600
    assert not a.admit(2, 300, 700, 300, (7, 200))  # 700 - 200 shared > 400 free: it waits
    assert a.admit(3, 300, 500, 300, (7, 200))
    assert a.shared_slots == 200  # the system prompt, shared token by token (radix)
    a.free(1), a.free(3)
    a.check_invariants()


def test_v1_children_share_full_prompt_blocks_only_via_prefix_cache() -> None:
    for caching, shared in ((True, 32), (False, 0)):
        a = PagedAllocator(1600, 16, prefix_caching=caching)
        for k in range(3):  # 40-token prompt: 2 full blocks + a partial one per child
            assert a.admit(k, 40, 100, 40, None, ("r1", ("s", k), True))
            assert a.last_hit_tokens == (32 if caching and k else 0)
        assert a.shared_slots == 2 * shared and a.used_blocks == 9 - 4 * bool(caching)
        a.check_invariants()


def test_recompute_rehits_cached_blocks() -> None:
    a = PagedAllocator(1600, 16)
    assert a.admit(1, 40, 200, 40, None, ("r1", ("s", 1), False)) and a.last_hit_tokens == 0
    assert a.extend(1, 100)
    a.cache_blocks(1, 99)  # preempted by recompute with 99 tokens computed
    a.free(1)
    assert a.cached_slots == 6 * 16
    assert a.admit(1, 99, 200, 40, None, ("r1", ("s", 1), False))
    assert a.last_hit_tokens == 96 and a.cached_slots == 0
    a.check_invariants()
