"""Read side: the effective configuration of a user for a kind, and masked views of layers.

`effective_config` is the one answer to "which provider, model and key will this user's next
chat turn (or speech call) use, and where did each value come from". Layers, lowest to highest:
defaults, system, group (in group-name order), user, the chat session's override. A field locked
at a layer cannot be changed by any layer above it in that order. Group limits (allowed
providers and models; union over the user's groups that set one) are checked last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet

from accounts.selectors import user_is_admin
from cortex import errors
from preferences import crypto, params
from preferences.errors import (
    FieldLocked,
    ModelNotAllowed,
    ProviderNotAllowed,
    ProviderNotConfigured,
    SecretUnavailable,
)
from preferences.models import PreferenceLayer, Scope
from providers.base import Backend
from providers.registry import DEFAULT_PROVIDERS, registry

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class EffectiveConfig:
    """Provider and values for one user and kind; `values` holds plaintext secrets.

    Never serialise `values`; use `masked_values()` for anything that leaves the process.
    """

    kind: str
    provider: str
    values: dict[str, Any] = field(repr=False)
    sources: dict[str, str]
    secret_fields: frozenset[str] = frozenset()

    def backend(self) -> Backend:
        """The provider's backend; raises ProviderNotConfigured when no layer names one."""
        if not self.provider:
            raise ProviderNotConfigured(
                f"No {self.kind} provider is configured: set one in your preferences or ask an "
                "admin to set a system default."
            )
        return registry.get(self.kind, self.provider)

    def masked_values(self) -> dict[str, Any]:
        return {
            name: crypto.mask(value) if name in self.secret_fields and value else value
            for name, value in self.values.items()
        }


@dataclass
class _Entry:
    source: str
    value: Any
    encrypted: bool = False
    secret: bool = False


@dataclass
class _Frame:
    label: str
    provider: str
    values: dict[str, Any]
    secrets: dict[str, str]
    locked: list[str]
    strict: bool = False


@dataclass
class Resolution:
    """Intermediate result: which layer supplies each field, secrets still encrypted."""

    kind: str
    provider: str
    provider_source: str
    entries: dict[str, _Entry]
    locked_by: dict[str, str]
    limits: dict[str, dict[str, list[str]]]


def layers_for_user(*, user: User, kind: str) -> list[PreferenceLayer]:
    """System, the user's groups (by name) and the user's own layer, lowest first."""
    rows = list(
        PreferenceLayer.objects.filter(kind=kind)
        .filter(
            Q(scope=Scope.SYSTEM)
            | Q(scope=Scope.GROUP, group__in=user.groups.all())
            | Q(scope=Scope.USER, user=user)
        )
        .select_related("group")
    )
    order: dict[str, int] = {Scope.SYSTEM: 0, Scope.GROUP: 1, Scope.USER: 2}
    rows.sort(key=lambda r: (order[r.scope], r.group.name if r.group else ""))
    return rows


def layers_above_group(*, kind: str) -> list[PreferenceLayer]:
    return list(PreferenceLayer.objects.filter(kind=kind, scope=Scope.SYSTEM))


def locks_of(layers: list[PreferenceLayer]) -> dict[str, str]:
    """{field: label of the lowest-priority layer that locked it}."""
    locked: dict[str, str] = {}
    for layer in layers:
        if layer.scope != Scope.USER:
            for name in layer.locked:
                locked.setdefault(name, layer.label)
    return locked


def limits_of(layers: list[PreferenceLayer]) -> dict[str, dict[str, list[str]]]:
    """{"providers": {group label: [...]}, "models": {...}} for groups that set a limit."""
    limits: dict[str, dict[str, list[str]]] = {"providers": {}, "models": {}}
    for layer in layers:
        if layer.scope == Scope.GROUP:
            if layer.allowed_providers:
                limits["providers"][layer.label] = list(layer.allowed_providers)
            if layer.allowed_models:
                limits["models"][layer.label] = list(layer.allowed_models)
    return limits


def check_limits(
    *, limits: dict[str, dict[str, list[str]]], provider: str, model: Any, label: str = ""
) -> None:
    """Raise ProviderNotAllowed / ModelNotAllowed when no limiting group allows the value."""
    where = f" (set at {label})" if label else ""
    allowed = limits["providers"]
    if provider and allowed and not any(provider in v for v in allowed.values()):
        names = sorted({p for v in allowed.values() for p in v})
        raise ProviderNotAllowed(
            f"Provider {provider!r}{where} is not allowed by {', '.join(sorted(allowed))}; "
            f"allowed: {', '.join(names)}.",
            fields={"provider": [f"Not allowed; allowed: {', '.join(names)}."]},
        )
    allowed = limits["models"]
    if model and allowed and not any(model in v for v in allowed.values()):
        names = sorted({m for v in allowed.values() for m in v})
        raise ModelNotAllowed(
            f"Model {model!r}{where} is not allowed by {', '.join(sorted(allowed))}; "
            f"allowed: {', '.join(names)}.",
            fields={"model": [f"Not allowed; allowed: {', '.join(names)}."]},
        )


def _session_frame(kind: str, override: dict[str, Any]) -> _Frame:
    """Validate a chat session's override strictly: unknown fields and bad types are errors."""
    provider = override.get("provider") or ""
    if provider:
        registry.get(kind, provider)
    known = params.known_parameters(kind, provider)
    values: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for name, value in override.items():
        if name == "provider" or value is None:
            continue
        parameter = known.get(name)
        if parameter is None:
            problems[name] = ["Unknown field."]
            continue
        try:
            values[name] = (
                value
                if parameter.secret and isinstance(value, str)
                else params.clean_value(parameter, value)
            )
        except ValueError as exc:
            problems[name] = [str(exc)]
    if problems:
        raise errors.ValidationFailed(fields=problems)
    return _Frame("session", provider, values, {}, [], strict=True)


def _env_frame(kind: str) -> _Frame:
    """Initial system values from the environment (CORTEX_<KIND>_<FIELD>), below stored ones."""
    values = dict(getattr(settings, "PREFERENCES_ENV_DEFAULTS", {}).get(kind, {}))
    provider = values.pop("provider", "")
    return _Frame(Scope.SYSTEM.value, provider, values, {}, [])


def resolve(*, user: User, kind: str, session_override: dict[str, Any] | None = None) -> Resolution:
    """Work out the provider and the source of every field, without decrypting anything."""
    params.check_kind(kind)
    layers = layers_for_user(user=user, kind=kind)
    frames = [_env_frame(kind)]
    frames += [
        _Frame(layer.label, layer.provider, layer.values, layer.secrets, layer.locked)
        for layer in layers
    ]
    if session_override:
        frames.append(_session_frame(kind, session_override))

    # Pass 1: the provider, and which locks are in force below each frame.
    provider, provider_source = (
        DEFAULT_PROVIDERS[kind],
        "default" if DEFAULT_PROVIDERS[kind] else "",
    )
    locked_by: dict[str, str] = {}
    locks_before: list[dict[str, str]] = []
    for frame in frames:
        locks_before.append(dict(locked_by))
        if frame.provider:
            if "provider" in locked_by:
                if frame.strict:
                    raise FieldLocked(
                        f"provider is locked by the {locked_by['provider']} layer.",
                        fields={"provider": [f"Locked by {locked_by['provider']}."]},
                    )
            else:
                provider, provider_source = frame.provider, frame.label
        for name in frame.locked:
            locked_by.setdefault(name, frame.label)

    backend = registry.get(kind, provider) if provider else None
    names = set(backend.parameter_names()) if backend else set()
    secret_names = backend.secret_names() if backend else set()

    # Pass 2: values from frames that speak for this provider (or for whatever is inherited).
    entries: dict[str, _Entry] = {}
    for frame, locks in zip(frames, locks_before, strict=True):
        if frame.provider and frame.provider != provider:
            continue
        supplied = [(n, v, False) for n, v in frame.values.items()]
        supplied += [(n, v, True) for n, v in frame.secrets.items()]
        for name, value, encrypted in supplied:
            if name not in names:
                continue
            if name in locks:
                if frame.strict:
                    raise FieldLocked(
                        f"{name} is locked by the {locks[name]} layer.",
                        fields={name: [f"Locked by {locks[name]}."]},
                    )
                continue
            entries[name] = _Entry(frame.label, value, encrypted, name in secret_names)
    if backend is not None:
        for parameter in backend.parameters:
            if parameter.name not in entries and parameter.default is not None:
                entries[parameter.name] = _Entry("default", parameter.default)

    limits = limits_of(layers)
    model_entry = entries.get("model")
    check_limits(
        limits=limits,
        provider=provider if provider_source not in ("", "default") else "",
        model=model_entry.value if model_entry and model_entry.source != "default" else None,
    )
    return Resolution(kind, provider, provider_source, entries, locked_by, limits)


def effective_config(
    *, user: User, kind: str, session_override: dict[str, Any] | None = None
) -> EffectiveConfig:
    """The provider and values the user's next call of this kind will use, with sources.

    Raises SecretUnavailable when a stored secret cannot be decrypted, FieldLocked or a limit
    error for a session override that breaks the rules, and NotFound for an unknown kind.
    """
    resolution = resolve(user=user, kind=kind, session_override=session_override)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if resolution.provider:
        sources["provider"] = resolution.provider_source
    for name, entry in resolution.entries.items():
        if entry.encrypted:
            try:
                values[name] = crypto.decrypt(entry.value)
            except SecretUnavailable:
                raise SecretUnavailable(
                    f"The {name} stored at the {entry.source} layer cannot be decrypted with the "
                    "configured field keys; set it again."
                ) from None
        else:
            values[name] = entry.value
        sources[name] = entry.source
    secret_fields = frozenset(n for n, e in resolution.entries.items() if e.secret)
    return EffectiveConfig(resolution.kind, resolution.provider, values, sources, secret_fields)


def mask_ciphertext(token: str) -> dict[str, Any]:
    """Masked view of a stored secret; says so when it cannot be decrypted."""
    try:
        return crypto.mask(crypto.decrypt(token))
    except SecretUnavailable:
        return {"configured": True, "last4": "", "error": "secret_unavailable"}


def effective_config_public(*, user: User, kind: str) -> dict[str, Any]:
    """Effective config for display: secrets masked, errors reported instead of raised."""
    try:
        resolution = resolve(user=user, kind=kind)
    except errors.CortexError as exc:
        return {
            "kind": kind,
            "provider": "",
            "values": {},
            "sources": {},
            "locked": {},
            "error": {"code": exc.code, "message": exc.message},
        }
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if resolution.provider:
        sources["provider"] = resolution.provider_source
    for name, entry in resolution.entries.items():
        if entry.encrypted:
            values[name] = mask_ciphertext(entry.value)
        elif entry.secret and entry.value:
            values[name] = crypto.mask(str(entry.value))
        else:
            values[name] = entry.value
        sources[name] = entry.source
    result: dict[str, Any] = {
        "kind": kind,
        "provider": resolution.provider,
        "values": values,
        "sources": sources,
        "locked": resolution.locked_by,
        "error": None,
    }
    if not resolution.provider:
        result["error"] = {
            "code": ProviderNotConfigured.code,
            "message": str(ProviderNotConfigured.default_message),
        }
    return result


def layer_get(
    *, scope: str, kind: str, user: User | None = None, group: Group | None = None
) -> PreferenceLayer | None:
    return (
        PreferenceLayer.objects.filter(scope=scope, kind=kind, user=user, group=group)
        .select_related("group")
        .first()
    )


def layer_public(*, layer: PreferenceLayer | None, kind: str, scope: str) -> dict[str, Any]:
    """A layer as clients see it: flat fields, secrets masked, locks and limits."""
    data: dict[str, Any] = {"kind": kind, "scope": scope, "provider": ""}
    if layer is not None:
        data["provider"] = layer.provider
        data.update(layer.values)
        for name, token in layer.secrets.items():
            data[name] = mask_ciphertext(token)
        data["updated_at"] = layer.updated_at
    else:
        data["updated_at"] = None
    if scope != Scope.USER:
        data["locked"] = list(layer.locked) if layer else []
    if scope == Scope.GROUP:
        data["allowed_providers"] = list(layer.allowed_providers) if layer else []
        data["allowed_models"] = list(layer.allowed_models) if layer else []
    return data


def layer_list_for_user(*, user: User) -> QuerySet[PreferenceLayer]:
    """The caller's own layers (what a user may read and write)."""
    return PreferenceLayer.objects.filter(scope=Scope.USER, user=user)


def group_get_for_admin(*, user: User, group_id: int) -> Group:
    """A group for the admin endpoints; NotFound for non-admins and unknown ids."""
    if not user_is_admin(user):
        raise errors.NotFound()
    group = Group.objects.filter(pk=group_id).first()
    if group is None:
        raise errors.NotFound("No such group.")
    return group


def all_layers() -> QuerySet[PreferenceLayer]:
    """Every stored layer (key rotation)."""
    return PreferenceLayer.objects.order_by("pk")


def layer_list_for_admin(*, user: User) -> QuerySet[PreferenceLayer]:
    """All layers for admins, none for anyone else."""
    if not user_is_admin(user):
        return PreferenceLayer.objects.none()
    return PreferenceLayer.objects.select_related("group", "user")
