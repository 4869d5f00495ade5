"""`AuditContext`: one value per transport says through which transport, from where and with
which client an action arrived; services take it instead of a request and a source string."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

from accounts.context import DEFAULT_CONTEXT, TRANSPORTS, AuditContext
from accounts.models import AuditEvent
from accounts.services import audit_record, audit_refusal

# Services that start or end a session need the HttpRequest itself (and build the context
# from it): nothing else in a services or selectors module takes a request.
TAKES_THE_REQUEST = {"accounts.services.auth.password_login", "accounts.services.auth.logout"}


def test_from_request_reads_the_resolved_address_and_agent(rf) -> None:
    request = rf.get("/", REMOTE_ADDR="192.0.2.5", HTTP_USER_AGENT="x" * 600)
    context = AuditContext.from_request(request)
    assert context == AuditContext("api", "192.0.2.5", "x" * 512)
    assert AuditContext.admin(request).transport == "admin"
    assert AuditContext.from_request(rf.get("/", REMOTE_ADDR="")).client_ip is None


def test_from_scope_reads_the_client_and_agent() -> None:
    scope = {"client": ("192.0.2.6", 4000), "headers": [(b"user-agent", b"agent/1")]}
    assert AuditContext.from_scope(scope, "console") == AuditContext(
        "console", "192.0.2.6", "agent/1"
    )
    assert AuditContext.from_scope({}) == AuditContext("ws")


def test_the_value_is_frozen_and_named_per_transport() -> None:
    context = AuditContext.grpc("192.0.2.9")
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.transport = "api"  # type: ignore[misc]
    assert context.via("import") == AuditContext("import", "192.0.2.9")
    assert AuditContext.command("grant_node") == AuditContext("command", label="grant_node")
    assert AuditContext.system("sweeper") == AuditContext("system", label="sweeper")
    assert AuditContext("api") == DEFAULT_CONTEXT  # the old request=None, source="api"
    assert set(TRANSPORTS) >= {"api", "admin", "ws", "console", "grpc", "command", "system"}


@pytest.mark.django_db
def test_audit_rows_get_the_contexts_fields(user) -> None:
    event = audit_record(
        actor=user,
        action="thing.done",
        audit_context=AuditContext("admin", "192.0.2.1", "browser"),
    )
    event.refresh_from_db()
    assert (event.source, event.client_ip, event.user_agent) == ("admin", "192.0.2.1", "browser")
    refusal = audit_refusal(
        actor=None,
        action="thing.refused",
        reason="r",
        audit_context=AuditContext.grpc("192.0.2.2"),
    )
    assert refusal is not None
    assert (refusal.source, refusal.client_ip) == ("grpc", "192.0.2.2")
    assert AuditEvent.objects.count() == 2


def _service_functions():
    root = Path(settings.BASE_DIR).resolve()
    for config in apps.get_app_configs():
        if not Path(config.path).resolve().is_relative_to(root):
            continue
        names = [f"{config.name}.services", f"{config.name}.selectors"]
        for name in list(names):
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError:
                continue
            if hasattr(module, "__path__"):
                names += [info.name for info in pkgutil.iter_modules(module.__path__, f"{name}.")]
        for name in names:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError:
                continue
            for _, function in inspect.getmembers(module, inspect.isfunction):
                if function.__module__ == name:
                    yield f"{name}.{function.__name__}", inspect.signature(function)


def test_no_service_threads_a_request_or_a_source_by_hand() -> None:
    offenders = []
    seen = 0
    for name, signature in _service_functions():
        seen += 1
        params = signature.parameters
        if "request" in params and name not in TAKES_THE_REQUEST:
            offenders.append(f"{name}(request)")
        if "client_ip" in params:
            offenders.append(f"{name}(client_ip)")
        # The old hand-threaded form was `source: str = "api"` (a transport name by default); a
        # required `source` is data of the call (a workspace's source of truth), not a transport.
        source = params.get("source")
        if (
            source is not None
            and source.annotation in ("str", str)
            and source.default is not inspect.Parameter.empty
        ):
            offenders.append(f"{name}(source: str = {source.default!r})")
    assert seen > 100  # the scan found the services
    assert not offenders, f"take an audit_context: AuditContext instead: {offenders}"
