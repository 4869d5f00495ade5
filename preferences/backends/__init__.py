"""Provider backends: one registry, one module per provider family.

`autodiscover()` (called from PreferencesConfig.ready) imports the built-in modules, which
register their backends; other apps may add a `provider_backends` module.
"""

from __future__ import annotations

import importlib

from preferences.backends.base import KINDS, Backend, Parameter, VerifyResult
from preferences.backends.registry import AlreadyRegistered, NotRegistered, registry

BUILTIN_MODULES = (
    "preferences.backends.openai_compatible",
    "preferences.backends.anthropic",
    "preferences.backends.gemini",
    "preferences.backends.local",
)

#: The backend used when no layer names a provider; llm has none on purpose.
DEFAULT_PROVIDERS = {"llm": "", "tts": "espeak", "stt": "pocketsphinx"}


def autodiscover() -> None:
    """Import every built-in backend module (each registers on first import)."""
    from django.utils.module_loading import autodiscover_modules

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    autodiscover_modules("provider_backends", register_to=registry)


__all__ = [
    "DEFAULT_PROVIDERS",
    "KINDS",
    "AlreadyRegistered",
    "Backend",
    "NotRegistered",
    "Parameter",
    "VerifyResult",
    "autodiscover",
    "registry",
]
