"""Planted state refused at start-up (issue 12 §4): an unsafe state_dir or ACME cache_dir stops
the provider before anything binds, with the path, what is wrong and the fix."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from spire_oidc.acme.cache import CacheError, DirCache
from spire_oidc.config.model import AcmeConfig, Config
from spire_oidc.core import persist
from spire_oidc.core.keys import KeySet, key_from_jwk
from spire_oidc.daemon import Provider
from spire_oidc.errors import StartupError
from tests.integration.support import file_config, get, raw_http, tcp_target, wait_for
from tests.keyfactory import bundle_bytes, ec_key, public_jwk

pytestmark = pytest.mark.integration

Start = Callable[[Config], Awaitable[Provider]]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to uid 65534")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _refuses_connections(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_world_writable_state_dir_fails_start_up_before_binding(
    run_provider: Start, tmp_path: Path
) -> None:
    """A world-writable state_dir holding a planted key set: start-up fails with the fix and the
    listener is never bound (nothing is served)."""
    bundle, state = tmp_path / "b.json", tmp_path / "state"
    persist.save(
        str(state), KeySet((key_from_jwk(public_jwk("planted", ec_key())),)), mod_time=1, now=1
    )
    os.chmod(state, 0o777)
    port = _free_port()
    cfg = file_config(bundle, state_dir=str(state), insecure_addr=f"127.0.0.1:{port}")
    with pytest.raises(StartupError, match=rf"{state}: state_dir has mode 0777.*chmod 700"):
        await run_provider(cfg)
    assert _refuses_connections(port)


@needs_root
async def test_foreign_state_file_is_not_served(run_provider: Start, tmp_path: Path) -> None:
    """A state file owned by another uid is not served after a restart while the source is down
    (the provider starts and answers 500 instead of the planted keys)."""
    bundle, state = tmp_path / "b.json", tmp_path / "state"
    persist.save(
        str(state), KeySet((key_from_jwk(public_jwk("planted", ec_key())),)), mod_time=1, now=1e9
    )
    os.chown(state / persist.STATE_FILE, 65534, 65534)
    p = await run_provider(file_config(bundle, state_dir=str(state), state_max_age=1e12))
    assert p.store.current is None
    r = await raw_http(tcp_target(p), get("/keys"))
    assert r.status == 500 and b"planted" not in r.body


async def test_restart_still_serves_a_private_state_file(
    run_provider: Start, tmp_path: Path
) -> None:
    """A state_dir created by the provider itself passes its own checks across a restart."""
    bundle, state = tmp_path / "b.json", tmp_path / "a" / "state"
    bundle.write_bytes(bundle_bytes([public_jwk("k1", ec_key())]))
    p1 = await run_provider(file_config(bundle, state_dir=str(state)))
    await wait_for(lambda: (state / persist.STATE_FILE).exists(), what="state file")
    await p1.stop()
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o700
    bundle.unlink()
    p2 = await run_provider(file_config(bundle, state_dir=str(state)))
    assert p2.store.current is not None and p2.store.current.keys.kids == ("k1",)


def _acme_config(tmp_path: Path, cache_dir: Path, port: int) -> Config:
    acme = AcmeConfig(
        directory_url="https://127.0.0.1:9/directory",
        email="ops@domain.test",
        tos_accepted=True,
        cache_dir=str(cache_dir),
        addr=f"127.0.0.1:{port}",
        host="127.0.0.1",
        port=port,
    )
    return replace(file_config(tmp_path / "b.json", insecure_addr=""), acme=acme)


async def test_group_writable_acme_cache_fails_start_up_before_binding(
    run_provider: Start, tmp_path: Path
) -> None:
    """A group-writable ACME cache_dir (it holds private keys) stops start-up before binding."""
    cache = tmp_path / "acme"
    cache.mkdir()
    os.chmod(cache, 0o770)
    port = _free_port()
    with pytest.raises(StartupError, match=rf"{cache}: ACME cache_dir has mode 0770.*chmod 700"):
        await run_provider(_acme_config(tmp_path, cache, port))
    assert _refuses_connections(port)


@needs_root
def test_acme_cache_entry_owned_by_another_uid_is_refused(tmp_path: Path) -> None:
    """A cache entry owned by another uid is not read (CacheError: the manager logs it)."""
    cache = DirCache(str(tmp_path / "acme"))
    cache.put("acme_account+key", b"key")
    os.chown(tmp_path / "acme" / "acme_account+key", 65534, 65534)
    with pytest.raises(CacheError, match="owned by uid 65534"):
        cache.get("acme_account+key")


def test_acme_cache_components_are_created_0700_under_umask_0(tmp_path: Path) -> None:
    """Every missing component of the ACME cache_dir is created 0700 under umask 0."""
    old = os.umask(0)
    try:
        DirCache(str(tmp_path / "x" / "acme")).put("k", b"v")
    finally:
        os.umask(old)
    for d in (tmp_path / "x", tmp_path / "x" / "acme"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
