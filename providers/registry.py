"""The one provider registry, keyed by (kind, id), in the manner of Django's admin site.

`autodiscover()` runs once, from ProvidersConfig.ready: it imports `backends` of every package
under providers/ (each registers its backends on import), then `provider_backends` of other
apps. Adding a provider is adding one package; nothing else lists provider ids.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from providers.base import KINDS, Backend, ChatBackend
from providers.errors import UnknownProvider

if TYPE_CHECKING:
    from providers.llm import LLMClient, LLMSettings

#: The backend used when no layer names a provider; llm has none on purpose.
DEFAULT_PROVIDERS = {"llm": "", "tts": "espeak", "stt": "pocketsphinx"}


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

    def chat_client(self, settings: LLMSettings) -> LLMClient:
        """The chat client of `settings.provider`; an unknown backend is a provider error."""
        from providers.llm import LLMError

        backend = self._registry.get(("llm", settings.provider))
        if not isinstance(backend, ChatBackend):
            raise LLMError(
                "provider_unavailable",
                f"No LLM backend named '{settings.provider}'.",
                provider=settings.provider or "unknown",
            )
        return backend.chat_client(settings)

    @contextmanager
    def temporarily(self, backend: Backend) -> Iterator[Backend]:
        """Register a backend for the duration of a block (tests)."""
        self.register(backend)
        try:
            yield backend
        finally:
            self.unregister(backend.kind, backend.id)


registry = BackendRegistry()


def provider_packages() -> list[str]:
    """Dotted names of the `backends` modules of every package under providers/."""
    import providers

    found = []
    for info in pkgutil.iter_modules(providers.__path__):
        name = f"providers.{info.name}.backends"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            found.append(name)
    return sorted(found)


def autodiscover() -> None:
    """Import every provider package's backends, then other apps' `provider_backends`."""
    from django.utils.module_loading import autodiscover_modules

    for module in provider_packages():
        importlib.import_module(module)
    autodiscover_modules("provider_backends", register_to=registry)
