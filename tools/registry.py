"""The one tool registry, filled at start-up the way Django's admin registers models.

`ToolsConfig.ready()` calls `autodiscover()`: every module in `tools/definitions/` is imported,
then the `tool_definitions` module of every installed app. Modules register with the
`@registry.register` decorator. After start-up the registry is frozen; tests use
`registry.temporarily(...)`.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.utils.module_loading import autodiscover_modules

from tools.base import Tool

logger = logging.getLogger("cortex.tools")

T = TypeVar("T", bound=Tool | type[Tool])

DEFINITIONS_PACKAGE = "tools.definitions"


class AlreadyRegistered(Exception):  # noqa: N818  # named like django.contrib.admin's
    """A tool with this name is registered already."""


class NotRegistered(Exception):  # noqa: N818  # named like django.contrib.admin's
    """No tool with this name is registered."""


class RegistryFrozen(RuntimeError):
    """Start-up is over: the set of tools is fixed (tests use `temporarily`)."""


class ToolRegistry:
    """Name -> tool instance; duplicate and unknown names fail loudly."""

    def __init__(self) -> None:
        self._registry: dict[str, Tool] = {}
        self._frozen = False
        #: Duplicates met during discovery, reported by the `tools.E001` system check.
        self.conflicts: list[str] = []

    def register(self, tool: T) -> T:
        """Register a `Tool` subclass (instantiated) or instance; usable as a decorator."""
        if self._frozen:
            raise RegistryFrozen(f"Cannot register {tool!r}: tools are fixed after start-up.")
        instance = tool() if isinstance(tool, type) else tool
        if not isinstance(instance, Tool):
            raise TypeError(f"{tool!r} is not a Tool.")
        if instance.name in self._registry:
            raise AlreadyRegistered(f"A tool named '{instance.name}' is already registered.")
        self._registry[instance.name] = instance
        return tool

    def unregister(self, name: str) -> None:
        if self._frozen:
            raise RegistryFrozen(f"Cannot unregister '{name}': tools are fixed after start-up.")
        if name not in self._registry:
            raise NotRegistered(f"No tool named '{name}' is registered.")
        del self._registry[name]

    def get(self, name: str) -> Tool | None:
        return self._registry.get(name)

    def all(self) -> list[Tool]:
        """Every registered tool, sorted by name."""
        return [self._registry[name] for name in sorted(self._registry)]

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def __len__(self) -> int:
        return len(self._registry)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        self._frozen = True

    @contextmanager
    def temporarily(self, *tools: Tool | type[Tool]) -> Iterator[ToolRegistry]:
        """Open the registry for one test: register `tools`; on exit restore the former set."""
        saved = dict(self._registry)
        saved_conflicts = list(self.conflicts)
        was_frozen = self._frozen
        self._frozen = False
        try:
            for tool in tools:
                self.register(tool)
            yield self
        finally:
            self._registry = saved
            self.conflicts = saved_conflicts
            self._frozen = was_frozen


registry = ToolRegistry()


def _import_definition(module_name: str, target: ToolRegistry) -> None:
    """Import one definitions module; a duplicate name is kept for `tools.E001`."""
    try:
        importlib.import_module(module_name)
    except AlreadyRegistered as exc:
        target.conflicts.append(f"{module_name}: {exc}")
        logger.error("Tool definition %s not loaded: %s", module_name, exc)


def autodiscover(target: ToolRegistry | None = None) -> ToolRegistry:
    """Import `tools/definitions/*` and every app's `tool_definitions`; returns the registry."""
    target = target or registry
    package: Any = importlib.import_module(DEFINITIONS_PACKAGE)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            _import_definition(f"{DEFINITIONS_PACKAGE}.{info.name}", target)
    try:
        autodiscover_modules("tool_definitions", register_to=target)
    except AlreadyRegistered as exc:
        target.conflicts.append(str(exc))
        logger.error("A tool_definitions module was not loaded: %s", exc)
    return target
