"""The store: change detection, Last-Modified/ETag stability, freshness (DESIGN: store)."""

from __future__ import annotations

import json

from spire_oidc.core.clock import FakeClock
from spire_oidc.core.keys import KeySet, key_from_jwk
from spire_oidc.core.store import KeyStore
from tests.keyfactory import ec_key, public_jwk


def keyset(*kids: str) -> KeySet:
    return KeySet(tuple(key_from_jwk(public_jwk(k, ec_key())) for k in kids))


def test_first_publish_renders_and_dates() -> None:
    """The first key set is rendered with mod_time = now and a strong quoted ETag."""
    clock = FakeClock(1_700_000_000.5)
    store = KeyStore(set_key_use=False, clock=clock)
    assert store.current is None
    ks = keyset("a", "b")
    assert store.publish(ks) is True
    cur = store.current
    assert cur is not None
    assert cur.mod_time == 1_700_000_000.5
    assert cur.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert cur.etag.startswith('"') and cur.etag.endswith('"')
    assert [k["kid"] for k in json.loads(cur.body)["keys"]] == ["a", "b"]


def test_unchanged_content_changes_nothing_even_reordered() -> None:
    """Same kids and keys (any order) keep the bytes, Last-Modified and ETag; freshness moves."""
    clock = FakeClock()
    store = KeyStore(set_key_use=False, clock=clock)
    ks = keyset("a", "b")
    store.publish(ks)
    first = store.current
    clock.advance(60)
    assert store.publish(KeySet(tuple(reversed(ks.keys)))) is False
    assert store.current is first
    assert store.last_success == clock.now()


def test_rotation_moves_last_modified_and_etag() -> None:
    """A new kid is a change: new mod_time and a new ETag."""
    clock = FakeClock()
    store = KeyStore(set_key_use=False, clock=clock)
    store.publish(keyset("a"))
    first = store.current
    clock.advance(5)
    assert store.publish(keyset("a2")) is True
    assert store.current is not None and first is not None
    assert store.current.mod_time == first.mod_time + 5
    assert store.current.etag != first.etag
    assert store.updates == 2


def test_equal_keys_give_equal_etags_across_stores() -> None:
    """Replicas serving the same keys agree on the ETag (it is a hash of the bytes)."""
    ks = keyset("a")
    s1, s2 = (
        KeyStore(set_key_use=True, clock=FakeClock(1)),
        KeyStore(set_key_use=True, clock=FakeClock(2)),
    )
    s1.publish(ks)
    s2.publish(ks)
    assert s1.current is not None and s2.current is not None
    assert s1.current.etag == s2.current.etag


def test_empty_key_set_is_a_revocation() -> None:
    """An empty key set replaces the keys (served as 501), it is not ignored."""
    store = KeyStore(set_key_use=False, clock=FakeClock())
    store.publish(keyset("a"))
    assert store.publish(KeySet()) is True
    assert store.current is not None and store.current.empty


def test_errors_keep_last_good_keys() -> None:
    """A reported error keeps the current keys and records the message."""
    store = KeyStore(set_key_use=False, clock=FakeClock())
    store.publish(keyset("a"))
    cur = store.current
    store.report_error("boom")
    assert store.current is cur and store.last_error == "boom" and store.errors == 1


def test_streaming_freshness() -> None:
    """A connected stream is fresh at every instant; after it breaks, freshness stops moving."""
    clock = FakeClock()
    store = KeyStore(set_key_use=False, clock=clock)
    store.publish(keyset("a"))
    store.set_streaming(True)
    clock.advance(3600)
    assert store.last_success == clock.now()
    store.set_streaming(False)
    broke = clock.now()
    clock.advance(100)
    assert store.last_success == broke


def test_listeners_called_on_change_only() -> None:
    """Listeners hear about content changes, not about unchanged re-deliveries."""
    store = KeyStore(set_key_use=False, clock=FakeClock())
    seen: list[tuple[str, ...]] = []
    store.add_listener(lambda r: seen.append(r.keys.kids))
    ks = keyset("a")
    store.publish(ks)
    store.publish(ks)
    store.publish(keyset("b"))
    assert seen == [("a",), ("b",)]
