"""Process-wide facts that components report and the health checks read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ProcessState:
    """Process-wide facts that health reports besides the keys."""

    shutting_down: bool = False
    waiting: dict[str, str] = field(default_factory=dict)  # component -> what it waits for
