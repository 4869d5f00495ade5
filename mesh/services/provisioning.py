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
import re
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services.audit import audit_record
from cortex.errors import Unavailable, ValidationFailed
from mesh.agent.compat import MIN_PYTHON
from mesh.models import Node
from mesh.services.invites import InvitePending, invite_issue, invite_pending

INVITE_MODES = ("auto", "new", "none")
COMMAND_CONTEXT = AuditContext.command("provision_node")  # what `provisioning_write` is for

AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "provisioning"
PACKAGE_NAME = "cortex_agent"
CA_FILE = "hub_ca.pem"
EXECUTABLE = frozenset({"run.sh", "bootstrap.py"})
_SKIP_DIRS = frozenset({"__pycache__", "tests"})
#: What the agent's browser skill needs (installed by bootstrap.py when the skill is on).
BROWSER_REQUIREMENT = "playwright>=1.49,<2"
MIN_FREE_MB = 200  # a venv with the agent's requirements takes about 120 MB


@dataclass(frozen=True)
class BundleFile:
    name: str
    data: bytes

    @property
    def mode(self) -> int:
        if self.name == "agent_config.yaml":
            return 0o600  # carries the invite
        return 0o755 if self.name in EXECUTABLE else 0o644


WHEELS_DIR = "wheels"
WHEELS_TIMEOUT = 600
_PYTHON_VERSION = re.compile(r"3\.(?:9|1[0-9])")
_PLATFORM = re.compile(r"(?:manylinux|musllinux|macosx)_?[a-z0-9_]{1,40}|linux_(?:x86_64|aarch64)")


@dataclass(frozen=True)
class WheelTarget:
    """The node's Python (e.g. "3.10") and platform tag (e.g. "manylinux2014_x86_64")."""

    python_version: str
    platform: str


def wheel_target(*, python_version: str = "", platform: str = "") -> WheelTarget:
    """The target for offline wheels; defaults are the hub's own Python and platform."""
    version = python_version.strip() or f"{sys.version_info[0]}.{sys.version_info[1]}"
    tag = platform.strip() or sysconfig.get_platform().replace("-", "_").replace(".", "_")
    if tag == "linux_x86_64":
        tag = "manylinux2014_x86_64"
    elif tag == "linux_aarch64":
        tag = "manylinux2014_aarch64"
    errors: dict[str, list[str]] = {}
    if not _PYTHON_VERSION.fullmatch(version):
        errors["python_version"] = ["A supported Python version such as 3.9, 3.10 or 3.13."]
    if not _PLATFORM.fullmatch(tag):
        errors["platform"] = ["A wheel platform tag such as manylinux2014_x86_64."]
    if errors:
        raise ValidationFailed(fields=errors)
    return WheelTarget(version, tag)


def _wheel_files(target: WheelTarget) -> list[BundleFile]:
    """`pip download` the agent's requirements as wheels for the target (binary only)."""
    with tempfile.TemporaryDirectory(prefix="cortex-wheels-") as folder:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--quiet",
            "--only-binary=:all:",
            "--python-version",
            target.python_version,
            "--platform",
            target.platform,
            "--implementation",
            "cp",
            "-d",
            folder,
            "-r",
            str(AGENT_DIR / "requirements.txt"),
        ]
        try:
            # The version and platform passed the patterns above; no shell is involved.
            done = subprocess.run(  # noqa: S603
                command, capture_output=True, timeout=WHEELS_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise Unavailable("The package index did not answer in time.") from exc
        if done.returncode != 0:
            raise Unavailable(
                f"No wheels of the agent's requirements for Python {target.python_version} "
                f"on {target.platform} could be downloaded.",
                code="wheels_unavailable",
            )
        return [
            BundleFile(f"{WHEELS_DIR}/{path.name}", path.read_bytes())
            for path in sorted(Path(folder).glob("*.whl"))
        ]


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
        "min_python": ".".join(str(part) for part in MIN_PYTHON),
        "min_python_tuple": ", ".join(str(part) for part in MIN_PYTHON),
        "min_free_mb": MIN_FREE_MB,
        "browser": bool((node.skill_config or {}).get("browser")),
        "browser_requirement": BROWSER_REQUIREMENT,
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


def _provisioning_files(
    *,
    actor: User | None,
    node: Node,
    audit_context: AuditContext = DEFAULT_CONTEXT,
    invite: str = "auto",
    wheels: WheelTarget | None = None,
) -> list[BundleFile]:
    """Render every file of the node's bundle (audited), with an invite as `invite` says; with
    `wheels`, the bundle also carries the agent's requirements as wheels for that Python and
    platform.

    Raises InvitePending (409) for "auto" while the node has a pending invite.
    """
    if invite not in INVITE_MODES:
        raise ValueError(f"invite must be one of {INVITE_MODES}")
    # Downloaded before the invite is issued: a failing index leaves no invite behind.
    wheel_files = _wheel_files(wheels) if wheels is not None else []
    with transaction.atomic():
        if invite == "auto" and invite_pending(node=node):
            raise InvitePending()
        token = ""
        if invite != "none":
            token = invite_issue(actor=actor, node=node, audit_context=audit_context)
        files = _render(node, token) + wheel_files
        details: dict[str, Any] = {
            "grpc_address": settings.PUBLIC_GRPC_ADDRESS,
            "files": len(files),
            "invite": "none" if not token else "issued",
        }
        if wheels is not None:
            details["wheels"] = {"python": wheels.python_version, "platform": wheels.platform}
        audit_record(
            actor=actor,
            action="node.bundle_issued",
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details=details,
        )
    return files


def provisioning_bundle(
    *,
    actor: User | None,
    node: Node,
    audit_context: AuditContext = DEFAULT_CONTEXT,
    invite: str = "auto",
    wheels: WheelTarget | None = None,
) -> bytes:
    """The node's bundle as a zip archive (run.sh and bootstrap.py executable)."""
    files = _provisioning_files(
        actor=actor, node=node, audit_context=audit_context, invite=invite, wheels=wheels
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
    actor: User | None,
    node: Node,
    directory: Path,
    audit_context: AuditContext = COMMAND_CONTEXT,
    invite: str = "new",
    wheels: WheelTarget | None = None,
) -> list[Path]:
    """Write the node's bundle into `directory` (created if missing); returns the paths.

    The command asks for it by name, so it issues a new invite by default (and says so)."""
    files = _provisioning_files(
        actor=actor, node=node, audit_context=audit_context, invite=invite, wheels=wheels
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
