"""Writes to preference layers: validation against backends, locks and limits; audited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.services.audit import audit_record
from cortex import errors
from preferences import crypto, params, selectors
from preferences.errors import FieldLocked, ModelNotAllowed, ProviderNotAllowed
from preferences.models import PreferenceLayer, Scope
from providers.errors import UnknownProvider
from providers.registry import registry

if TYPE_CHECKING:
    from accounts.models import User


class _Problems:
    """Collects per-field messages and the most specific error code."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}
        self.codes: set[str] = set()

    def add(self, name: str, message: str, code: str = "invalid_input") -> None:
        self.fields.setdefault(name, []).append(message)
        self.codes.add(code)

    def raise_if_any(self) -> None:
        if not self.fields:
            return
        error_classes: dict[str, type[errors.CortexError]] = {
            FieldLocked.code: FieldLocked,
            ProviderNotAllowed.code: ProviderNotAllowed,
            ModelNotAllowed.code: ModelNotAllowed,
            UnknownProvider.code: UnknownProvider,
        }
        if len(self.codes) == 1 and next(iter(self.codes)) in error_classes:
            cls = error_classes[next(iter(self.codes))]
            message = "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(self.fields.items()))
            raise cls(message, fields=self.fields)
        raise errors.ValidationFailed(fields=self.fields)


def _context_layers(*, scope: str, kind: str, user: User | None) -> list[PreferenceLayer]:
    """Layers above the one being written: their locks and limits bind it."""
    if scope == Scope.USER and user is not None:
        return [
            layer
            for layer in selectors.layers_for_user(user=user, kind=kind)
            if layer.scope != Scope.USER
        ]
    if scope == Scope.GROUP:
        return selectors.layers_above_group(kind=kind)
    return []


def _apply(
    *,
    layer: PreferenceLayer,
    kind: str,
    data: dict[str, Any],
    replace: bool,
    context: list[PreferenceLayer],
) -> tuple[list[str], list[str]]:
    """Validate `data` and set it on `layer` (unsaved); returns (changed, cleared) field names."""
    problems = _Problems()
    locks = selectors.locks_of(context)
    changed: list[str] = []
    cleared: list[str] = []

    provider = layer.provider
    if "provider" in data:
        new_provider = data["provider"] or ""
        if new_provider and not registry.has(kind, new_provider):
            problems.add(
                "provider",
                f"Unknown provider; valid: {', '.join(registry.ids(kind))}.",
                UnknownProvider.code,
            )
            new_provider = provider
        if new_provider != provider:
            if "provider" in locks:
                problems.add("provider", f"Locked by {locks['provider']}.", FieldLocked.code)
            provider = new_provider

    # A new provider starts from a clean slate: the old provider's URL and key never carry over.
    provider_switched = provider != layer.provider and bool(layer.provider)
    values = {} if (replace or provider_switched) else dict(layer.values)
    secrets = {} if provider_switched else dict(layer.secrets)
    if replace and not provider_switched:
        secrets = {n: t for n, t in secrets.items() if params.is_masked(data.get(n))}

    known = params.known_parameters(kind, provider)
    for name, value in data.items():
        if name in params.LAYER_META_FIELDS:
            continue
        parameter = known.get(name)
        if parameter is None:
            problems.add(name, "Unknown field for this provider.")
            continue
        if name in locks:
            problems.add(name, f"Locked by {locks[name]}.", FieldLocked.code)
            continue
        if parameter.secret:
            try:
                secret = params.clean_secret(value)
            except ValueError as exc:
                problems.add(name, str(exc))
                continue
            if isinstance(secret, params.Keep):  # the one KEEP sentinel
                if name in layer.secrets and not provider_switched:
                    secrets[name] = layer.secrets[name]
                continue
            if secret is None:
                secrets.pop(name, None)
            else:
                secrets[name] = crypto.encrypt(secret)
            continue
        if value is None:
            values.pop(name, None)
            continue
        try:
            values[name] = params.clean_value(parameter, value)
        except ValueError as exc:
            problems.add(name, str(exc))

    # Values from before a provider was chosen must fit the provider now chosen.
    for name in list(values) + list(secrets):
        if name not in known and name not in problems.fields:
            problems.add(name, "Not a parameter of this provider.")

    meta: dict[str, list[str]] = {}
    for name in ("locked", "allowed_providers", "allowed_models"):
        if name in data or replace:
            raw = data.get(name) or []
            if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
                problems.add(name, "Must be a list of strings.")
                continue
            meta[name] = sorted(set(raw))
    if meta.get("locked"):
        if layer.scope == Scope.USER:
            problems.add("locked", "Only system and group layers lock fields.")
        unknown = set(meta["locked"]) - params.lockable_fields(kind)
        if unknown:
            problems.add("locked", f"Unknown fields: {', '.join(sorted(unknown))}.")
    for name in ("allowed_providers", "allowed_models"):
        if meta.get(name) and layer.scope != Scope.GROUP:
            problems.add(name, "Limits apply to group layers only.")
    unknown_providers = set(meta.get("allowed_providers", [])) - set(registry.ids(kind))
    if unknown_providers:
        problems.add("allowed_providers", f"Unknown: {', '.join(sorted(unknown_providers))}.")

    if layer.scope == Scope.USER:
        limits = selectors.limits_of(context)
        try:
            selectors.check_limits(
                limits=limits,
                provider=provider if "provider" in data else "",
                model=values.get("model") if "model" in data else None,
            )
        except (ProviderNotAllowed, ModelNotAllowed) as exc:
            for name, messages in (exc.fields or {}).items():
                for message in messages:
                    problems.add(name, message, exc.code)
    problems.raise_if_any()

    old_fields = set(layer.values) | set(layer.secrets)
    new_fields = set(values) | set(secrets)
    if provider != layer.provider:
        changed.append("provider")
    for name in sorted(new_fields | old_fields):
        before = layer.values.get(name, layer.secrets.get(name))
        after = values.get(name, secrets.get(name))
        if name not in new_fields:
            cleared.append(name)
        elif before != after:
            changed.append(name)
    for name, value in meta.items():
        if getattr(layer, name) != value:
            changed.append(name)
            setattr(layer, name, value)
    layer.provider = provider
    layer.values = values
    layer.secrets = secrets
    return changed, cleared


def layer_check(
    *,
    scope: str,
    kind: str,
    data: dict[str, Any],
    user: User | None = None,
    group: Group | None = None,
    replace: bool = False,
) -> None:
    """Validate a change exactly as layer_update would, without writing (admin forms)."""
    params.check_kind(kind)
    layer = PreferenceLayer.objects.filter(
        scope=scope, kind=kind, user=user, group=group
    ).first() or PreferenceLayer(scope=scope, kind=kind, user=user, group=group)
    context = _context_layers(scope=scope, kind=kind, user=user)
    _apply(layer=layer, kind=kind, data=data, replace=replace, context=context)


def layer_update(
    *,
    actor: User,
    scope: str,
    kind: str,
    data: dict[str, Any],
    user: User | None = None,
    group: Group | None = None,
    replace: bool = False,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> PreferenceLayer:
    """Change one layer: PATCH semantics, or PUT with replace=True; audits field names only.

    Secrets: a string sets, null clears, the masked value ("****" or {"configured": true})
    keeps. Raises FieldLocked, ProviderNotAllowed, ModelNotAllowed, UnknownProvider or
    ValidationFailed with per-field messages; nothing is written then.
    """
    params.check_kind(kind)
    with transaction.atomic():
        layer = (
            PreferenceLayer.objects.select_for_update()
            .filter(scope=scope, kind=kind, user=user, group=group)
            .first()
        ) or PreferenceLayer(scope=scope, kind=kind, user=user, group=group)
        context = _context_layers(scope=scope, kind=kind, user=user)
        changed, cleared = _apply(
            layer=layer, kind=kind, data=data, replace=replace, context=context
        )
        if not changed and not cleared:
            return layer
        layer.updated_by = actor
        layer.full_clean()
        layer.save()
        audit_record(
            actor=actor,
            action="preferences.layer_update",
            target_type="preferences.layer",
            target_id=f"{layer.label}:{kind}"
            if scope != Scope.USER
            else f"user:{user.pk if user else ''}:{kind}",
            audit_context=audit_context,
            details={
                "scope": scope,
                "kind": kind,
                "changed_fields": changed,
                "cleared_fields": cleared,
            },
        )
    return layer
