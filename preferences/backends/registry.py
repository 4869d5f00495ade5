"""The provider backend registry, keyed by (kind, id), in the manner of Django's admin site."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from preferences.backends.base import KINDS, Backend
from preferences.errors import UnknownProvider


class AlreadyRegistered(Exception):
    """A backend with this (kind, id) is registered already."""


class NotRegistered(Exception):
    """No backend with this (kind, id) is registered."""


class BackendRegistry:
    """Holds one backend per (kind, id); nothing registers after startup except in tests."""

    def __init__(self) -> None:
        self._registry: dict[tuple[str, str], Backend] = {}

    def register(self, backend: Backend) -> Backend:
        if backend.kind not in KINDS:
            raise ValueError(f"Unknown kind {backend.kind!r} for backend {backend.id!r}.")
        if backend.key in self._registry:
            raise AlreadyRegistered(f"{backend.kind}/{backend.id} is already registered.")
        self._registry[backend.key] = backend
        return backend

    def unregister(self, kind: str, backend_id: str) -> None:
        if (kind, backend_id) not in self._registry:
            raise NotRegistered(f"{kind}/{backend_id} is not registered.")
        del self._registry[(kind, backend_id)]

    def get(self, kind: str, backend_id: str) -> Backend:
        """The backend, or UnknownProvider (a validation error) naming the valid ids."""
        try:
            return self._registry[(kind, backend_id)]
        except KeyError:
            valid = ", ".join(self.ids(kind)) or "none"
            raise UnknownProvider(
                f"Unknown {kind} provider {backend_id!r}; valid: {valid}.",
                fields={"provider": [f"Unknown provider {backend_id!r}."]},
            ) from None

    def has(self, kind: str, backend_id: str) -> bool:
        return (kind, backend_id) in self._registry

    def ids(self, kind: str) -> list[str]:
        return sorted(i for k, i in self._registry if k == kind)

    def for_kind(self, kind: str) -> list[Backend]:
        return [self._registry[(kind, i)] for i in self.ids(kind)]

    def all(self) -> list[Backend]:
        return [self._registry[key] for key in sorted(self._registry)]

    @contextmanager
    def temporarily(self, backend: Backend) -> Iterator[Backend]:
        """Register a backend for the duration of a block (tests)."""
        self.register(backend)
        try:
            yield backend
        finally:
            self.unregister(backend.kind, backend.id)


registry = BackendRegistry()
