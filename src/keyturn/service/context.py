"""What every part of a running service shares: the settings, the manager, the metrics."""

from __future__ import annotations

from dataclasses import dataclass

from keyturn.admin import AsyncKeyAdmin
from keyturn.config import Settings
from keyturn.manager import AsyncKeyManager, KeyManager
from keyturn.service.metrics import Metrics


@dataclass(frozen=True, slots=True)
class ServiceContext:
    settings: Settings
    manager: AsyncKeyManager
    metrics: Metrics

    @property
    def sync(self) -> KeyManager:
        return self.manager.sync

    @property
    def admin(self) -> AsyncKeyAdmin:
        return self.manager.admin


def build_context(settings: Settings, manager: KeyManager) -> ServiceContext:
    """The service's shared parts over a manager built by ``keyturn.compose``."""
    return ServiceContext(settings, AsyncKeyManager(manager), Metrics())
