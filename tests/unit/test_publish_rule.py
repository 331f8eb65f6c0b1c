"""The published bytes and object keys, and the no-rollback rule (publish/render.py, rule.py)."""

from __future__ import annotations

import json

import pytest

from spire_oidc.core.documents import DiscoveryOptions, render_discovery, render_jwks
from spire_oidc.core.keys import KeySet
from spire_oidc.errors import StartupError
from spire_oidc.publish.render import DEFAULT_CACHE_CONTROL, object_path
from spire_oidc.publish.rule import MAX_RETIRED, PublishState, decide
from spire_oidc.storage.base import StorageError
from tests.unit.publish_support import DISCOVERY_KEY, ISSUER, JWKS_KEY, keyset, target


def test_object_keys_follow_the_issuer_and_jwks_uri_paths() -> None:
    """Objects live at <issuer path>/.well-known/openid-configuration and <jwks_uri path>."""
    t = target()
    assert (t.jwks_key, t.discovery_key) == (JWKS_KEY, DISCOVERY_KEY)
    root = target(issuer="https://oidc.example.org", jwks_uri="https://oidc.example.org/keys")
    assert (root.jwks_key, root.discovery_key) == ("keys", ".well-known/openid-configuration")
    other = target(jwks_uri="https://cdn.example.org/a%20b/./jwks.json")
    assert other.jwks_key == "a b/jwks.json"
    assert object_path("https://h/x/../y/") == "y"


def test_a_jwks_uri_without_path_cannot_be_published() -> None:
    """A jwks_uri with no path (or the discovery document's path) is refused at start-up."""
    with pytest.raises(StartupError, match="no path"):
        target(jwks_uri="https://oidc.example.org/").check()
    with pytest.raises(StartupError, match="discovery"):
        target(jwks_uri=ISSUER + "/.well-known/openid-configuration").check()


def test_published_bytes_are_the_listeners_rendering_sorted_by_kid() -> None:
    """The JWKS is the listener's rendering with keys sorted by kid; discovery is identical."""
    options = DiscoveryOptions(signing_algs_from_keys=True)
    t = target(discovery=options, set_key_use=True)
    ks = keyset("zeta", "alpha", "mu")
    jwks, discovery = t.render(ks)
    assert [k["kid"] for k in json.loads(jwks.body)["keys"]] == ["alpha", "mu", "zeta"]
    assert jwks.body == render_jwks(keyset("alpha", "mu", "zeta"), set_key_use=True)
    assert discovery.body == render_discovery(ISSUER, ISSUER + "/keys", options, ks)
    assert jwks.cache_control == discovery.cache_control == DEFAULT_CACHE_CONTROL
    assert jwks.content_type == discovery.content_type == "application/json"


def test_replicas_render_byte_identical_objects_whatever_the_source_order() -> None:
    """Two replicas given the same keys in different orders publish the same bytes."""
    a = target().render(keyset("k1", "k2", "k3"))
    b = target().render(KeySet(tuple(reversed(keyset("k1", "k2", "k3").keys))))
    assert a == b


def test_configured_cache_control_is_used() -> None:
    """cache_control.keys/.discovery replace the default on the objects."""
    jwks, discovery = target(
        keys_cache_control="public, max-age=60", discovery_cache_control="public, max-age=3600"
    ).render(keyset("k"))
    assert (jwks.cache_control, discovery.cache_control) == (
        "public, max-age=60",
        "public, max-age=3600",
    )


def test_an_empty_delivered_set_renders_an_empty_jwks() -> None:
    """An empty key set (SPIRE's revocation) is published as {"keys": []}."""
    jwks, _ = target().render(KeySet())
    assert json.loads(jwks.body) == {"keys": []}


def test_state_record_round_trips_and_retires_removed_kids() -> None:
    """Each publication is one generation; removed kids are recorded as retired."""
    s1 = PublishState().successor(["a", "b"])
    s2 = s1.successor(["b", "c"])
    assert s2 == PublishState(2, {"b": 1, "c": 2}, {"a": 2})
    assert PublishState.decode(s2.encode()) == s2
    assert s2.encode() == PublishState.decode(s2.encode()).encode()


def test_retired_record_is_bounded() -> None:
    """The retired record keeps only the most recent removals."""
    state = PublishState()
    for i in range(MAX_RETIRED + 10):
        state = state.successor([f"k{i}"])
    assert len(state.retired) == MAX_RETIRED
    assert "k0" not in state.retired and f"k{MAX_RETIRED + 8}" in state.retired


@pytest.mark.parametrize(
    "data", [b"not json", b"[]", b'{"format": 2}', b'{"format": 1, "generation": -1}']
)
def test_an_unreadable_record_is_an_invalid_storage_error(data: bytes) -> None:
    """A record this version did not write is reported (reason invalid), never guessed at."""
    with pytest.raises(StorageError) as info:
        PublishState.decode(data)
    assert info.value.reason == "invalid"


def test_rule_without_a_record_allows_the_write() -> None:
    """No record (first publication): the write is allowed (it creates the record)."""
    assert decide(None, ["a"], set()).allowed


def test_rule_allows_adding_kids() -> None:
    """Adding a kid (SPIRE prepares keys ahead) is always allowed."""
    state = PublishState().successor(["a"])
    assert decide(state, ["a", "b"], set()).allowed


def test_rule_refuses_a_set_holding_a_retired_kid() -> None:
    """A replica still serving a kid the store retired is behind."""
    state = PublishState().successor(["a", "b"]).successor(["b"])
    verdict = decide(state, ["a", "b"], set())
    assert not verdict.allowed and verdict.retired_kids == ("a",)


def test_rule_refuses_to_drop_a_newer_kid_it_never_saw() -> None:
    """A replica that has not yet seen a kid added after all of its own is behind."""
    state = PublishState().successor(["a"]).successor(["a", "b"])
    verdict = decide(state, ["a"], set())
    assert not verdict.allowed and verdict.newer_kids == ("b",)


def test_rule_allows_removal_seen_by_the_own_source() -> None:
    """Removing a kid the replica's own source delivered and then dropped is allowed."""
    state = PublishState().successor(["a", "b"])
    assert not decide(state, ["b"], set()).allowed  # same generation: no evidence
    assert decide(state, ["b"], {"a"}).allowed
    assert decide(state, [], {"a", "b"}).allowed  # revocation seen by the source


def test_rule_allows_removal_superseded_by_a_later_kid() -> None:
    """A kid published later, or one the store never saw, supersedes older stored kids."""
    state = PublishState().successor(["a"]).successor(["a", "b"])
    assert decide(state, ["b"], set()).allowed
    assert decide(state, ["c"], set()).allowed
    assert not decide(state, [], set()).allowed
