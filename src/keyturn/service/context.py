"""What every part of a running service shares: the settings, the manager, the metrics."""

from __future__ import annotations

from dataclasses import dataclass

from keyturn._delivery import Deliverer
from keyturn._reminders import Reminders
from keyturn.admin import AsyncKeyAdmin
from keyturn.config import Settings
from keyturn.manager import AsyncKeyManager, KeyManager
from keyturn.service.metrics import Metrics


@dataclass(frozen=True, slots=True)
class ServiceContext:
    settings: Settings
    manager: AsyncKeyManager
    metrics: Metrics
    # The webhook worker of this instance (started and stopped with the app), if any.
    deliverer: Deliverer | None = None
    # The time-driven events of this instance (``keyturn._reminders``), if any.
    reminders: Reminders | None = None

    def background(self) -> tuple[Deliverer | Reminders, ...]:
        """The workers that run while the app does."""
        return tuple(w for w in (self.deliverer, self.reminders) if w is not None)

    @property
    def sync(self) -> KeyManager:
        return self.manager.sync

    @property
    def admin(self) -> AsyncKeyAdmin:
        return self.manager.admin


def build_context(
    settings: Settings,
    manager: KeyManager,
    deliverer: Deliverer | None = None,
    reminders: Reminders | None = None,
) -> ServiceContext:
    """The service's shared parts over a manager built by ``keyturn.compose``."""
    metrics = Metrics()
    metrics.watch_verifications(manager.verifications)
    if deliverer is not None:
        metrics.watch_deliveries(deliverer)
    return ServiceContext(settings, AsyncKeyManager(manager), metrics, deliverer, reminders)
