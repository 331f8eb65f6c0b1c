"""The replicas' shared storage for ACME: challenge lookups (bounded), the account key created
once, the storage status report, the metrics, and the acme.storage / lock_lease config keys."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from spire_oidc.acme.shared import (
    LOOKUP_CONCURRENCY,
    SharedChallenges,
    SharedStorage,
    StoreCache,
    challenge_key,
)
from spire_oidc.acme.tlsalpn import challenge_certificate
from spire_oidc.config.model import parse_config
from spire_oidc.core.clock import FakeClock
from spire_oidc.core.store import KeyStore
from spire_oidc.errors import ConfigError
from spire_oidc.http.metrics import ProviderMetrics
from spire_oidc.storage.base import StorageError, StoredObject
from spire_oidc.storage.memory import MemoryStore

NAME = "oidc.test"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


class CountingStore(MemoryStore):
    """A MemoryStore that counts reads and can hold them (a slow store)."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.gate: asyncio.Event | None = None

    async def get(self, key: str) -> StoredObject | None:
        self.gets += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().get(key)


def _challenges(store: MemoryStore, clock: FakeClock | None = None) -> SharedChallenges:
    return SharedChallenges(SharedStorage(store, clock=clock or FakeClock()), (NAME,))


async def test_http01_token_published_by_another_replica_is_found() -> None:
    """A published key authorization is served; after withdrawal (zero bytes) it is gone."""
    store = CountingStore()
    holder, other = _challenges(store), _challenges(store)
    await holder.publish("http-01", TOKEN, b"token.thumbprint")
    assert await other.http01(TOKEN) == "token.thumbprint"
    await holder.withdraw("http-01", TOKEN)
    assert await _challenges(store).http01(TOKEN) is None


async def test_malformed_tokens_never_reach_the_store() -> None:
    """Tokens outside base64url or shorter than 22 / longer than 128 characters are refused
    without a storage read."""
    store = CountingStore()
    challenges = _challenges(store)
    for bad in ["short", "../../acme_account+key", "a" * 129, "x" * 30 + "/", "é" * 30, ""]:
        assert await challenges.http01(bad) is None
    assert store.gets == 0


async def test_a_repeated_unknown_token_is_read_once_within_the_negative_ttl() -> None:
    """A miss is remembered for a second: the same bogus token does not hammer the store."""
    store, clock = CountingStore(), FakeClock()
    challenges = _challenges(store, clock)
    for _ in range(5):
        assert await challenges.http01(TOKEN) is None
    assert store.gets == 1
    clock.advance(1.5)
    assert await challenges.http01(TOKEN) is None
    assert store.gets == 2


async def test_a_flood_of_distinct_tokens_is_bounded() -> None:
    """With the store slow, at most LOOKUP_CONCURRENCY reads run; further lookups answer None
    at once instead of queueing on the store."""
    store = CountingStore()
    store.gate = asyncio.Event()
    challenges = _challenges(store)
    tokens = [f"{i:022d}" for i in range(LOOKUP_CONCURRENCY + 20)]
    tasks = [asyncio.create_task(challenges.http01(t)) for t in tokens]
    await asyncio.sleep(0.05)
    assert store.gets == LOOKUP_CONCURRENCY
    store.gate.set()
    assert await asyncio.gather(*tasks) == [None] * len(tokens)
    assert store.gets == LOOKUP_CONCURRENCY


async def test_concurrent_tls_alpn_lookups_share_one_read_and_unknown_names_none() -> None:
    """The CA's concurrent validations of one name share one read; a name that is not
    configured is never looked up."""
    store = CountingStore()
    chain, key = challenge_certificate(NAME, "token.thumbprint")
    await store.put(challenge_key("tls-alpn-01", NAME), key + chain)
    store.gate = asyncio.Event()
    challenges = _challenges(store)
    tasks = [asyncio.create_task(challenges.tls_alpn(NAME)) for _ in range(3)]
    await asyncio.sleep(0.05)
    store.gate.set()
    contexts = await asyncio.gather(*tasks)
    assert all(ctx is not None for ctx in contexts)
    assert store.gets == 1
    assert await challenges.tls_alpn("other.test") is None
    assert store.gets == 1


async def test_the_account_key_is_created_once_by_racing_replicas() -> None:
    """Replicas that need the account key at once: one CREATE wins and all use its bytes."""
    store = MemoryStore()
    caches = [StoreCache(SharedStorage(store, clock=FakeClock())) for _ in range(5)]
    keys = await asyncio.gather(
        *(c.put_new("acme_account+key", f"k{i}".encode()) for i, c in enumerate(caches))
    )
    assert len(set(keys)) == 1
    assert store.objects["acme_account+key"].data == keys[0]


async def test_a_set_aside_entry_is_copied_and_blanked() -> None:
    """An unusable account key is kept as <name>.invalid and a new one can then be created."""
    store = MemoryStore()
    cache = StoreCache(SharedStorage(store, clock=FakeClock()))
    await store.put("acme_account+key", b"garbage")
    assert await cache.set_aside("acme_account+key") == "acme_account+key.invalid"
    assert store.objects["acme_account+key.invalid"].data == b"garbage"
    assert await cache.get("acme_account+key") is None
    assert await cache.put_new("acme_account+key", b"new") == b"new"


async def test_status_and_metrics_report_an_outage() -> None:
    """A failing store shows as unreachable with its reason in the report and is counted in
    spire_oidc_acme_storage_errors_total; the lock gauge shows the held lock."""
    store, clock = MemoryStore(), FakeClock()
    metrics = ProviderMetrics(
        store=KeyStore(set_key_use=False, clock=clock),
        clock=clock,
        source_kind="file",
        poll_interval=10.0,
        routes={},
    )
    shared = SharedStorage(store, clock=clock, metrics=metrics)
    await shared.get("x")
    assert shared.status.report(clock.now())["reachable"] is True
    store.fail_with = StorageError("refused", reason="unreachable")
    with pytest.raises(StorageError):
        await shared.get("x")
    report = shared.status.report(clock.now())
    assert report["reachable"] is False and report["last_error_reason"] == "unreachable"
    assert "memory" not in json.dumps(report)  # health is public: no location
    metrics.acme_lock_held(NAME, True)
    body, _ = metrics.render("")
    text = body.decode()
    assert 'spire_oidc_acme_storage_errors_total{reason="unreachable"} 1.0' in text
    assert 'spire_oidc_acme_lock_held{domain="oidc.test"} 1.0' in text


_BASE = 'domains = ["oidc.test"]\nfile { path = "/x" }\nacme {\n email = "e@x.test"\n tos_accepted = true\n%s}\n'


def test_storage_and_cache_dir_together_are_refused_naming_both() -> None:
    """storage with an explicitly written cache_dir is a config error naming both keys and
    the line of storage."""
    text = _BASE % ' storage = "file:///mnt/shared"\n cache_dir = "/var/acme"\n'
    with pytest.raises(ConfigError) as err:
        parse_config(text, path="p.conf")
    assert "storage and cache_dir are mutually exclusive" in str(err.value)
    assert err.value.key == "acme.storage" and err.value.line == 6


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('storage = "ftp://x/y"', "is not a storage URL: use s3://"),
        ('storage = "file://relative"', "absolute path"),
        ('storage = ""', "storage must not be empty"),
        ('lock_lease = "500ms"', "lock_lease must be at least 1s"),
        ('lock_lease = "2 minutes"', "invalid lock_lease"),
    ],
)
def test_bad_storage_and_lock_lease_values_are_config_errors(value: str, message: str) -> None:
    """A malformed storage URL or lock_lease stops loading with what is allowed."""
    with pytest.raises(ConfigError, match=message):
        parse_config(_BASE % f" {value}\n", path="p.conf")


def test_storage_and_lock_lease_are_read() -> None:
    """A valid storage URL and lease are kept; cache_dir is then unused (shown empty)."""
    cfg = parse_config(_BASE % ' storage = "s3://bucket/oidc-acme"\n lock_lease = "5s"\n')
    assert cfg.acme is not None
    assert (cfg.acme.storage, cfg.acme.lock_lease, cfg.acme.cache_dir) == (
        "s3://bucket/oidc-acme",
        5.0,
        "",
    )
    default = parse_config(_BASE % "")
    assert default.acme is not None and default.acme.storage == ""
    assert default.acme.lock_lease == 120.0


def test_validating_a_cloud_storage_config_imports_no_object_store_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``validate`` of a config with an s3:// storage loads neither obstore nor the ACME
    library."""
    conf = tmp_path / "p.conf"
    conf.write_text(_BASE % ' storage = "s3://bucket/oidc-acme"\n')
    probe = (
        "import sys, json\n"
        "from spire_oidc.cli import main\n"
        "code = main(['validate', '-config', sys.argv[1]])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'obstore', 'acme', 'josepy'})\n"
        "print(json.dumps([code, heavy]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(conf)], capture_output=True, text=True, timeout=60
    )
    code, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert code == 0, out.stderr
    assert heavy == []
