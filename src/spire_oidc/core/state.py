"""Process-wide facts that components report and the health checks read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ProcessState:
    """Process-wide facts that health reports besides the keys."""

    shutting_down: bool = False
    waiting: dict[str, str] = field(default_factory=dict)  # component -> what it waits for
    # Components whose waiting entry makes ``ready`` false. ACME's does not (``ready`` keeps
    # SPIRE's meaning there); the serving_svid listener's does: it has no certificate to serve.
    blocking: set[str] = field(default_factory=set)
    # Extra sections of ``/ready?verbose`` by name (e.g. ``acme_storage``): each is called with
    # the wall-clock time and returns public facts only (no path, address or secret).
    reports: dict[str, Callable[[float], dict[str, object]]] = field(default_factory=dict)

    def blocked(self) -> bool:
        """A blocking component is waiting."""
        return any(component in self.waiting for component in self.blocking)
