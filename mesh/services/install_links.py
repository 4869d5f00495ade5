"""One-line node install: `curl -fsSL '<url>' | bash` with a single-use, short-lived link.

Two tokens, each good once: the admin's link (`script`) answers a shell script; answering it
spends the link and mints a `bundle` token that only that script knows, which downloads the
node's bundle (with a fresh invite) once. Replaying the pasted command fails with a clear
message. Neither token is stored in plaintext; issuing, each use and each refusal are audited.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, INSTALL_LINK_CONTEXT, AuditContext
from accounts.models import User
from accounts.services.audit import audit_record
from cortex import errors
from mesh.models import InstallLinkStage, Node, NodeInstallLink
from mesh.services._common import new_secret, sha256_hex
from mesh.services.provisioning import TEMPLATE_DIR, provisioning_bundle
from mesh.services.refusals import refusal_record

if TYPE_CHECKING:
    from jinja2 import Template

#: How long a pasted command works; the bundle token lives only for the script's own download.
INSTALL_LINK_TTL = timedelta(minutes=15)
BUNDLE_TOKEN_TTL = timedelta(minutes=5)
SCRIPT_PREFIX = "cil_"
BUNDLE_PREFIX = "cib_"


class InstallLinkInvalid(errors.NotFound):
    code = "install_link_invalid"
    default_message = "This install link is not valid. Ask an admin for a new one."


class InstallLinkUsed(errors.Conflict):
    http_status = 410
    code = "install_link_used"
    default_message = (
        "This install link was already used; a link works once. "
        "Ask an admin for a new one (Admin page, node, Install command)."
    )


class InstallLinkExpired(errors.Conflict):
    http_status = 410
    code = "install_link_expired"
    default_message = "This install link has expired. Ask an admin for a new one."


InstallLinkRefused = InstallLinkInvalid | InstallLinkUsed | InstallLinkExpired


@dataclass(frozen=True)
class IssuedLink:
    node_id: str
    url: str
    command: str
    expires_at: Any


def _script_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/install/{token}/"


def _bundle_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/install/{token}/bundle.zip"


def install_link_issue(
    *, actor: User, node: Node, base_url: str, audit_context: AuditContext = DEFAULT_CONTEXT
) -> IssuedLink:
    """A new single-use link for `node` (earlier unused links keep working until they expire)."""
    token = new_secret(SCRIPT_PREFIX)
    now = timezone.now()
    with transaction.atomic():
        link = NodeInstallLink(
            node=node,
            stage=InstallLinkStage.SCRIPT,
            token_hash=sha256_hex(token),
            expires_at=now + INSTALL_LINK_TTL,
            created_by=actor,
        )
        link.full_clean()
        link.save()
        audit_record(
            actor=actor,
            action="node.install_link_issued",
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details={"link": link.pk, "expires_in": int(INSTALL_LINK_TTL.total_seconds())},
        )
    url = _script_url(base_url, token)
    quoted = "'" + url.replace("'", "'\\''") + "'"  # always quoted, as people expect to see it
    return IssuedLink(node.node_id, url, f"curl -fsSL {quoted} | bash", link.expires_at)


def _redeem(*, token: str, stage: str, audit_context: AuditContext) -> NodeInstallLink:
    """Spend one token of `stage` (exactly one of two racing uses wins); refusals audited."""
    prefix = SCRIPT_PREFIX if stage == InstallLinkStage.SCRIPT else BUNDLE_PREFIX
    link = None
    if token.startswith(prefix) and len(token) < 200:
        link = (
            NodeInstallLink.objects.select_related("node", "created_by")
            .filter(token_hash=sha256_hex(token), stage=stage)
            .first()
        )
    now = timezone.now()
    error: InstallLinkRefused | None = None
    if link is None:
        error = InstallLinkInvalid()
    elif link.used_at is not None:
        error = InstallLinkUsed()
    elif link.expires_at <= now:
        error = InstallLinkExpired()
    elif not NodeInstallLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now):
        error = InstallLinkUsed()
    if error is not None:
        refusal_record(
            action="node.install_link_refused",
            node_id=link.node.node_id if link is not None else "",
            reason=error.code,
            secret=token,
            audit_context=audit_context,
        )
        raise error
    assert link is not None  # noqa: S101  # narrowed above for the type checker
    return link


def install_script_render(
    *, token: str, base_url: str, audit_context: AuditContext = INSTALL_LINK_CONTEXT
) -> str:
    """Spend the pasted link and answer the install script with a fresh bundle token in it."""
    link = _redeem(token=token, stage=InstallLinkStage.SCRIPT, audit_context=audit_context)
    bundle_token = new_secret(BUNDLE_PREFIX)
    with transaction.atomic():
        bundle = NodeInstallLink(
            node=link.node,
            stage=InstallLinkStage.BUNDLE,
            token_hash=sha256_hex(bundle_token),
            parent=link,
            expires_at=timezone.now() + BUNDLE_TOKEN_TTL,
            created_by=link.created_by,
        )
        bundle.full_clean()
        bundle.save()
        audit_record(
            actor=None,
            action="node.install_link_used",
            target_type="node",
            target_id=link.node.node_id,
            audit_context=audit_context,
            details={"link": link.pk, "stage": "script", "issued_by": link.created_by_id},
        )
    return _template("install.sh.j2").render(
        node_id=link.node.node_id, bundle_url=_bundle_url(base_url, bundle_token)
    )


def install_bundle_download(
    *, token: str, audit_context: AuditContext = INSTALL_LINK_CONTEXT
) -> tuple[str, bytes]:
    """Spend a bundle token: (node id, the node's bundle zip with a fresh invite)."""
    link = _redeem(token=token, stage=InstallLinkStage.BUNDLE, audit_context=audit_context)
    node = Node.objects.get(pk=link.node_id)
    audit_record(
        actor=None,
        action="node.install_link_used",
        target_type="node",
        target_id=node.node_id,
        audit_context=audit_context,
        details={"link": link.parent_id, "stage": "bundle", "issued_by": link.created_by_id},
    )
    # The invite and the bundle are issued in the name of the admin who made the link; making
    # the link was the explicit request for a new invite, so it replaces a pending one (audited).
    return node.node_id, provisioning_bundle(
        actor=link.created_by, node=node, audit_context=audit_context, invite="new"
    )


def install_refusal_script(message: str) -> str:
    """A script that prints why the link did not work and exits non-zero."""
    return _template("install_refused.sh.j2").render(message=f"cortex: {message}")


def _template(name: str) -> Template:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701  # renders shell, never HTML
    )
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    return env.get_template(name)
