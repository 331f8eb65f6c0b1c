"""Every use of another library's private (undocumented) names, in one place.

A library may rename or drop these in any release, so each one is listed here with what it is
for, and ``tests/unit/test_compat.py`` fails loudly, naming the library and the name, when an
upgrade removes one. ``pyproject.toml`` bounds each of these libraries below its next minor
version, so an upgrade is a deliberate step that runs that test.

==============================  ===========================================================
name                            why
==============================  ===========================================================
``idna.core._STATUS_*``         UTS #46 status codes: Go's ``x/net/idna`` lookup profile is
                                reproduced code point by code point (config/domains.py)
``idna.uts46data``              the UTS #46 mapping table behind those statuses (its layout,
                                three parallel arrays, is idna's internal format)
``spiffe._proto``               the Workload API stubs the ``spiffe`` package generated; one
                                compiled ``workload.proto`` per process (sources/workload_api.py)
``logging.FileHandler._open``   reopen a log file after logrotate moved it (daemon.py, SIGHUP)
==============================  ===========================================================

aiohttp's internals (``RequestHandler``, ``_prepare_headers``, ``SockSite._runner``, ...) are
kept in the HTTP layer's own adapter module, beside the code that needs them.

Importing this module is cheap: ``idna`` is imported at once (the config layer needs it anyway);
the ``spiffe`` stubs, which pull in gRPC, only when first imported from here.
"""

from __future__ import annotations

import bisect
import importlib
import logging
from io import TextIOWrapper
from types import ModuleType
from typing import TYPE_CHECKING

from idna import core as _idna_core
from idna import uts46data as _uts46

if TYPE_CHECKING:
    from spiffe._proto import workload_pb2 as workload_pb2
    from spiffe._proto import workload_pb2_grpc as workload_pb2_grpc

__all__ = [
    "IDNA_DEVIATION",
    "IDNA_IGNORED",
    "IDNA_MAPPED",
    "IDNA_VALID",
    "reopen_file_handler",
    "uts46_lookup",
    "workload_pb2",
    "workload_pb2_grpc",
]

# -- idna -----------------------------------------------------------------------------------------
IDNA_VALID: int = _idna_core._STATUS_VALID
IDNA_MAPPED: int = _idna_core._STATUS_MAPPED
IDNA_IGNORED: int = _idna_core._STATUS_IGNORED
IDNA_DEVIATION: int = _idna_core._STATUS_DEVIATION

_UTS46_STARTS = _uts46.uts46_starts
_UTS46_STATUSES = _uts46.uts46_statuses
_UTS46_REPLACEMENTS = _uts46.uts46_replacements


def uts46_lookup(cp: int) -> tuple[int, str | None]:
    """The UTS #46 status (one of ``IDNA_*``) and mapping of one code point."""
    index = cp if cp < 256 else bisect.bisect_right(_UTS46_STARTS, cp) - 1
    status: int = _UTS46_STATUSES[index]
    replacement: str | None = _UTS46_REPLACEMENTS[index]
    return status, replacement


# -- spiffe ---------------------------------------------------------------------------------------
# ``from spire_oidc._compat import workload_pb2, workload_pb2_grpc``: the stubs generated inside the
# ``spiffe`` package, imported on first use (PEP 562) because they import gRPC, which only the
# Workload API source needs.
_LAZY = {
    "workload_pb2": "spiffe._proto.workload_pb2",
    "workload_pb2_grpc": "spiffe._proto.workload_pb2_grpc",
}


def __getattr__(name: str) -> ModuleType:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(module)


# -- logging --------------------------------------------------------------------------------------
def reopen_file_handler(handler: logging.FileHandler) -> TextIOWrapper | None:
    """Point ``handler`` at a freshly opened stream on its file; returns the old stream.

    ``FileHandler._open()`` opens ``baseFilename`` with the handler's mode, encoding and errors
    exactly as the handler itself does (there is no public way to ask for that).
    """
    stream: TextIOWrapper = handler._open()
    return handler.setStream(stream)
