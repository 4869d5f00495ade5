"""Provisioning bundles: the agent package, its config (with a fresh invite) and start scripts.

The bundle holds no secret other than its own single-use invite token. Issuing one is audited
(`node.bundle_issued`); the invite itself is issued (and audited) by `invite_issue`.

A bundle never replaces a pending invite without being asked to (`invite`):
- "auto" (REST default): a fresh invite when none is pending; 409 `invite_pending` otherwise;
- "new": a fresh invite, replacing any pending one (audited with the number replaced);
- "none": no token in `agent_config.yaml`; the operator pastes the one they hold.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from accounts.models import User
from accounts.services.audit import audit_record
from mesh.models import Node
from mesh.services.invites import InvitePending, invite_issue, invite_pending

INVITE_MODES = ("auto", "new", "none")

AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "provisioning"
PACKAGE_NAME = "cortex_agent"
CA_FILE = "hub_ca.pem"
EXECUTABLE = frozenset({"run.sh", "bootstrap.py"})
_SKIP_DIRS = frozenset({"__pycache__", "tests"})


@dataclass(frozen=True)
class BundleFile:
    name: str
    data: bytes

    @property
    def mode(self) -> int:
        if self.name == "agent_config.yaml":
            return 0o600  # carries the invite
        return 0o755 if self.name in EXECUTABLE else 0o644


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701  # renders YAML, shell and Python, never HTML
    )
    env.filters["yaml"] = lambda value: json.dumps(str(value))  # a JSON string is valid YAML
    return env


def _agent_files() -> list[BundleFile]:
    """The agent package as `cortex_agent/...` (no caches, no tests)."""
    files: list[BundleFile] = []
    for dirpath, dirnames, filenames in os.walk(AGENT_DIR):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for filename in sorted(filenames):
            if filename.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / filename
            rel = path.relative_to(AGENT_DIR).as_posix()
            files.append(BundleFile(f"{PACKAGE_NAME}/{rel}", path.read_bytes()))
    return files


def _tls() -> tuple[bool, bytes | None]:
    """Whether nodes dial with TLS, and the hub's own certificate when it serves TLS itself."""
    cert = settings.GRPC_TLS_CERT
    if cert:
        return True, Path(cert).read_bytes()
    return settings.PUBLIC_GRPC_ADDRESS.endswith(":443"), None


def _render(node: Node, invite_token: str) -> list[BundleFile]:
    tls_enabled, ca = _tls()
    context: dict[str, Any] = {
        "node_id": node.node_id,
        "grpc_address": settings.PUBLIC_GRPC_ADDRESS,
        "tls_enabled": tls_enabled,
        "tls_ca_file": CA_FILE if ca else "",
        "invite_token": invite_token,
        "invite_ttl_minutes": max(1, int(settings.MESH_INVITE_TTL) // 60),
        "issued_at": timezone.now().isoformat(timespec="seconds"),
    }
    env = _environment()
    files = [
        BundleFile(name, env.get_template(f"{name}.j2").render(context).encode())
        for name in ("agent_config.yaml", "run.sh", "bootstrap.py")
    ]
    files.append(BundleFile("requirements.txt", (AGENT_DIR / "requirements.txt").read_bytes()))
    if ca:
        files.append(BundleFile(CA_FILE, ca))
    return files + _agent_files()


def provisioning_files(
    *, actor: User, node: Node, request: Any = None, source: str = "api", invite: str = "auto"
) -> list[BundleFile]:
    """Render every file of the node's bundle (audited), with an invite as `invite` says.

    Raises InvitePending (409) for "auto" while the node has a pending invite.
    """
    if invite not in INVITE_MODES:
        raise ValueError(f"invite must be one of {INVITE_MODES}")
    with transaction.atomic():
        if invite == "auto" and invite_pending(node=node):
            raise InvitePending()
        token = ""
        if invite != "none":
            token = invite_issue(actor=actor, node=node, request=request, source=source)
        files = _render(node, token)
        audit_record(
            actor=actor,
            action="node.bundle_issued",
            target_type="node",
            target_id=node.node_id,
            request=request,
            source=source,
            details={
                "grpc_address": settings.PUBLIC_GRPC_ADDRESS,
                "files": len(files),
                "invite": "none" if not token else "issued",
            },
        )
    return files


def provisioning_bundle(
    *, actor: User, node: Node, request: Any = None, source: str = "api", invite: str = "auto"
) -> bytes:
    """The node's bundle as a zip archive (run.sh and bootstrap.py executable)."""
    files = provisioning_files(
        actor=actor, node=node, request=request, source=source, invite=invite
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in files:
            info = zipfile.ZipInfo(item.name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | item.mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, item.data)
    return buffer.getvalue()


def provisioning_write(
    *,
    actor: User,
    node: Node,
    directory: Path,
    request: Any = None,
    source: str = "command",
    invite: str = "new",
) -> list[Path]:
    """Write the node's bundle into `directory` (created if missing); returns the paths.

    The command asks for it by name, so it issues a new invite by default (and says so)."""
    files = provisioning_files(
        actor=actor, node=node, request=request, source=source, invite=invite
    )
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for item in files:
        target = directory / item.name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(item.data)
        # The config carries the invite: readable by its owner only.
        os.chmod(target, 0o600 if item.name == "agent_config.yaml" else item.mode)
        written.append(target)
    return written
