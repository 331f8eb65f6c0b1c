"""One gRPC channel to the SPIRE agent's Workload API socket, shared by every stream on it.

When the JWT bundle source (``workload_api``) and the ``serving_svid`` listener use the same
agent socket, both streams ride one channel (one connection to the agent). A stream that fails
with ``UNAVAILABLE`` (the agent went away) retires the channel, so the next attempt of either
stream opens a fresh one at once instead of waiting out gRPC's own reconnect backoff (up to two
minutes); a failure of one RPC alone (``PERMISSION_DENIED`` for one of them, say) leaves the
channel, and the other stream, alone. This module imports gRPC: import it only when needed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence

import grpc
import grpc.aio

# Failures after which a channel is not reused: the connection itself is gone.
RETIRE_ON = frozenset({grpc.StatusCode.UNAVAILABLE})


class AgentChannel:
    """A lazily opened ``grpc.aio`` channel to ``unix://<socket_path>``, renewed when broken."""

    def __init__(self, socket_path: str, *, options: Sequence[tuple[str, int]] = ()) -> None:
        self.socket_path = os.path.abspath(socket_path)
        self.target = "unix://" + self.socket_path
        self._options = list(options)
        self._channel: grpc.aio.Channel | None = None
        self._users = 0
        self.created = 0  # channels opened so far (tests read it)

    @contextlib.asynccontextmanager
    async def user(self) -> AsyncIterator[AgentChannel]:
        """One stream's use of the channel; the last user to leave closes it."""
        self._users += 1
        try:
            yield self
        finally:
            self._users -= 1
            if self._users == 0:
                await self.close()

    def get(self) -> grpc.aio.Channel:
        """The current channel, opened if there is none."""
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
            self.created += 1
        return self._channel

    async def failed(self, channel: grpc.aio.Channel, code: grpc.StatusCode | None) -> None:
        """A stream on ``channel`` failed with ``code`` (None: no connection could be made):
        retire the channel when the connection is gone (only once, whoever reports first)."""
        if (code is None or code in RETIRE_ON) and channel is self._channel:
            self._channel = None
            await channel.close()

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
