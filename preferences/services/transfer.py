"""YAML export and import of a user's own layers; secrets never leave, only "configured"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml
from django.db import transaction

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.services.audit import audit_record
from cortex import errors
from preferences import selectors
from preferences.models import Scope
from preferences.services.layers import layer_update
from providers.base import KINDS

if TYPE_CHECKING:
    from accounts.models import User

FORMAT_VERSION = 1
MAX_IMPORT_BYTES = 256 * 1024
#: Deepest nesting an import may have; a preferences file needs four levels.
MAX_IMPORT_DEPTH = 32


class _TooDeep(yaml.YAMLError):
    pass


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents nested deeper than MAX_IMPORT_DEPTH.

    PyYAML composes nodes recursively: a document nested a few thousand levels deep raised
    RecursionError (a 500) instead of a validation error.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_IMPORT_DEPTH:
                raise _TooDeep
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def preferences_export(*, user: User) -> str:
    """The user's own layers as YAML; each stored secret appears as {configured: true}."""
    document: dict[str, Any] = {"version": FORMAT_VERSION, "preferences": {}}
    for kind in KINDS:
        layer = selectors.layer_get(scope=Scope.USER, kind=kind, user=user)
        if layer is None:
            continue
        entry: dict[str, Any] = {}
        if layer.provider:
            entry["provider"] = layer.provider
        entry.update(layer.values)
        for name in layer.secrets:
            entry[name] = {"configured": True}
        document["preferences"][kind] = entry
    return yaml.safe_dump(document, sort_keys=True, allow_unicode=True)


def _parse(text: str) -> dict[str, dict[str, Any]]:
    if len(text.encode()) > MAX_IMPORT_BYTES:
        raise errors.ValidationFailed(fields={"file": ["The file is too large."]})
    try:
        document = yaml.load(text, Loader=_DepthLimitedLoader)  # noqa: S506  # a SafeLoader
    except _TooDeep:
        raise errors.ValidationFailed(
            fields={"file": [f"Nested too deeply (at most {MAX_IMPORT_DEPTH} levels)."]}
        ) from None
    except yaml.YAMLError:
        raise errors.ValidationFailed(fields={"file": ["Not valid YAML."]}) from None
    if not isinstance(document, dict) or not isinstance(document.get("preferences"), dict):
        raise errors.ValidationFailed(fields={"preferences": ["Expected a mapping of kinds."]})
    if document.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise errors.ValidationFailed(fields={"version": [f"Only version {FORMAT_VERSION}."]})
    problems: dict[str, list[str]] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for kind, entry in document["preferences"].items():
        if kind not in KINDS:
            problems[f"preferences.{kind}"] = ["Unknown kind."]
        elif not isinstance(entry, dict):
            problems[f"preferences.{kind}"] = ["Expected a mapping."]
        else:
            kinds[kind] = entry
    if problems:
        raise errors.ValidationFailed(fields=problems)
    return kinds


def preferences_import(
    *, actor: User, text: str, audit_context: AuditContext = DEFAULT_CONTEXT
) -> list[str]:
    """Replace the actor's layers for the kinds in the file: all of them, or none.

    Every kind is validated; errors come back together, keyed `preferences.<kind>.<field>`.
    Returns the kinds that were imported.
    """
    kinds = _parse(text)
    problems: dict[str, list[str]] = {}
    with transaction.atomic():
        for kind, entry in kinds.items():
            try:
                layer_update(
                    actor=actor,
                    scope=Scope.USER,
                    kind=kind,
                    user=actor,
                    data=entry,
                    replace=True,
                    audit_context=audit_context.via("import"),
                )
            except errors.ValidationFailed as exc:
                for name, messages in (exc.fields or {"": [exc.message]}).items():
                    key = f"preferences.{kind}.{name}" if name else f"preferences.{kind}"
                    problems[key] = messages
        if problems:
            transaction.set_rollback(True)
    if problems:
        raise errors.ValidationFailed(fields=problems)
    audit_record(
        actor=actor,
        action="preferences.import",
        target_type="preferences.user",
        target_id=str(actor.pk),
        audit_context=audit_context,
        details={"kinds": sorted(kinds)},
    )
    return sorted(kinds)
