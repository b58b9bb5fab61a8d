"""ExpiringCache: bounded, never past an entry's own expiry, and forget beats a load under way."""

from __future__ import annotations

import threading

from api.tenancy.expiring import ExpiringCache


def test_a_loaded_value_is_served_from_the_cache_and_nothing_found_is_not_kept():
    cache: ExpiringCache[str, int] = ExpiringCache(10, 60)
    loads = []
    assert cache.get("a", lambda: loads.append("a") or (1, 60)) == 1
    assert cache.get("a", lambda: loads.append("a") or (2, 60)) == 1
    assert cache.get("b", lambda: None) is None
    assert cache.get("b", lambda: (3, 60)) == 3
    assert loads == ["a"] and len(cache) == 2


def test_an_entry_is_not_kept_longer_than_its_load_allows_or_at_all_with_no_time_left():
    cache: ExpiringCache[str, int] = ExpiringCache(10, 60)
    assert cache.get("gone", lambda: (1, 0)) == 1  # e.g. a token at its exp
    assert cache.get("gone", lambda: (2, 60)) == 2
    ttl_zero: ExpiringCache[str, int] = ExpiringCache(10, 0)  # TENANT_CACHE_TTL_SECONDS=0
    ttl_zero.get("k", lambda: (1, 60))
    assert len(ttl_zero) == 0


def test_the_least_recently_used_entry_goes_first_when_full():
    cache: ExpiringCache[str, int] = ExpiringCache(2, 60)
    cache.get("a", lambda: (1, 60))
    cache.get("b", lambda: (2, 60))
    cache.get("a", lambda: (9, 60))  # a is used again: b is now the oldest
    cache.get("c", lambda: (3, 60))
    assert cache.get("b", lambda: (20, 60)) == 20
    assert cache.get("c", lambda: (30, 60)) == 3


def test_a_load_may_bring_other_entries_and_expiring_ones_are_listed():
    cache: ExpiringCache[str, int] = ExpiringCache(10, 60)
    cache.get("soon", lambda: (1, 0.5))
    cache.get("later", lambda: (2, 60))
    assert cache.expiring(1.0, among=10) == [("soon", 1)]
    assert cache.get("missing", lambda: (None, 60, {"soon": 11})) is None
    assert cache.get("soon", lambda: (99, 60)) == 11
    assert cache.expiring(1.0, among=10) == []


def test_forget_drops_entries_and_whatever_a_load_under_way_would_store():
    cache: ExpiringCache[str, str] = ExpiringCache(10, 60)
    cache.get("acme", lambda: ("active", 60))
    cache.get("zenith", lambda: ("active", 60))
    loading, go, answers = threading.Event(), threading.Event(), []

    def slow_load():
        loading.set()
        assert go.wait(10)
        return "active (read before the suspension)", 60

    cache.forget(lambda key, _value: key == "acme")
    racer = threading.Thread(target=lambda: answers.append(cache.get("acme", slow_load)))
    racer.start()
    assert loading.wait(10)
    cache.forget(lambda key, _value: key == "acme")  # the suspension, while the load runs
    go.set()
    racer.join(10)
    assert answers == ["active (read before the suspension)"]  # served once, not kept
    assert cache.get("acme", lambda: ("suspended", 60)) == "suspended"
    assert cache.get("zenith", lambda: ("other", 60)) == "active"
