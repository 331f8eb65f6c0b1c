"""Helpers for the publisher's unit tests: key sets by kid (one key per kid, as a real source
delivers the same key to every replica) and stores that record or disturb what is written."""

from __future__ import annotations

from spire_oidc.core.documents import SPIRE_DISCOVERY
from spire_oidc.core.keys import KeySet, key_from_jwk
from spire_oidc.publish.render import PublishTarget
from spire_oidc.storage.base import OVERWRITE, PutMode, StoredObject
from spire_oidc.storage.memory import MemoryStore
from tests.keyfactory import PrivateKey, ec_key, public_jwk

_KEYS: dict[str, PrivateKey] = {}

ISSUER = "https://oidc.example.org/prod"
JWKS_KEY = "prod/keys"
DISCOVERY_KEY = "prod/.well-known/openid-configuration"


def private_key(kid: str) -> PrivateKey:
    if kid not in _KEYS:
        _KEYS[kid] = ec_key()
    return _KEYS[kid]


def keyset(*kids: str) -> KeySet:
    return KeySet(tuple(key_from_jwk(public_jwk(k, private_key(k))) for k in kids))


def target(**kwargs: object) -> PublishTarget:
    fields: dict[str, object] = {
        "issuer": ISSUER,
        "jwks_uri": ISSUER + "/keys",
        "discovery": SPIRE_DISCOVERY,
        "set_key_use": False,
    }
    fields.update(kwargs)
    return PublishTarget(**fields)  # type: ignore[arg-type]


class RecordingStore(MemoryStore):
    """A MemoryStore that records the key of every successful write, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: PutMode = OVERWRITE,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        etag = await super().put(
            key, data, mode=mode, content_type=content_type, cache_control=cache_control
        )
        self.written.append(key)
        return etag


class CorruptingStore(MemoryStore):
    """A MemoryStore whose reads return other bytes than were written (a broken backend)."""

    async def get(self, key: str) -> StoredObject | None:
        obj = await super().get(key)
        if obj is None or key.startswith(".spire-oidc"):
            return obj
        return StoredObject(obj.data + b" ", obj.etag, obj.content_type, obj.cache_control)
