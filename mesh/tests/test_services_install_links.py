"""mesh/services/install_links.py: a link is spent by the script, which mints a bundle token
spent by the download; each works once, refusals carry stable codes, no token is stored."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from accounts.models import AuditEvent
from mesh.models import NodeInstallLink
from mesh.services.install_links import (
    InstallLinkExpired,
    InstallLinkInvalid,
    InstallLinkUsed,
    install_bundle_download,
    install_link_issue,
    install_refusal_script,
    install_script_render,
)

pytestmark = pytest.mark.django_db

BASE = "https://hub.example/"


@pytest.fixture
def node(make_node):  # type: ignore[no-untyped-def]
    return make_node("inst-1")[0]


def _token(url: str) -> str:
    return url.rstrip("/").split("/")[-1]


def test_install_link_issue_returns_a_quoted_command_and_stores_a_hash(staff_user, node) -> None:  # type: ignore[no-untyped-def]
    issued = install_link_issue(actor=staff_user, node=node, base_url=BASE)
    token = _token(issued.url)
    assert token.startswith("cil_")
    assert issued.url == f"https://hub.example/api/v1/install/{token}/"
    assert issued.command == f"curl -fsSL '{issued.url}' | bash"
    link = NodeInstallLink.objects.get()
    assert link.token_hash != token and token not in link.token_hash
    row = AuditEvent.objects.get(action="node.install_link_issued")
    assert row.target_id == "inst-1" and token not in json.dumps(row.details)


def test_install_script_render_spends_the_link_once(staff_user, node) -> None:  # type: ignore[no-untyped-def]
    token = _token(install_link_issue(actor=staff_user, node=node, base_url=BASE).url)
    script = install_script_render(token=token, base_url=BASE)
    assert "local node_id=inst-1" in script
    assert "https://hub.example/api/v1/install/cib_" in script
    with pytest.raises(InstallLinkUsed) as used:
        install_script_render(token=token, base_url=BASE)
    assert (used.value.code, used.value.http_status) == ("install_link_used", 410)
    refused = AuditEvent.objects.get(action="node.install_link_refused")
    assert refused.details["reason"] == "install_link_used"
    assert token not in json.dumps(refused.details)


@pytest.mark.parametrize("token", ["cil_unknown", "cib_wrong-stage", "x" * 300, ""])
def test_install_script_render_refuses_unknown_tokens(token) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InstallLinkInvalid) as caught:
        install_script_render(token=token, base_url=BASE)
    assert caught.value.code == "install_link_invalid"


def test_install_script_render_refuses_an_expired_link(staff_user, node) -> None:  # type: ignore[no-untyped-def]
    token = _token(install_link_issue(actor=staff_user, node=node, base_url=BASE).url)
    NodeInstallLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InstallLinkExpired) as caught:
        install_script_render(token=token, base_url=BASE)
    assert caught.value.code == "install_link_expired"


def test_install_bundle_download_once_with_a_fresh_invite(staff_user, node) -> None:  # type: ignore[no-untyped-def]
    link = install_link_issue(actor=staff_user, node=node, base_url=BASE)
    script = install_script_render(token=_token(link.url), base_url=BASE)
    bundle_url = next(
        line.split("=", 1)[1].strip("'") for line in script.splitlines() if "bundle_url=" in line
    )
    bundle_token = bundle_url.split("/")[-2]
    assert bundle_token.startswith("cib_")
    with pytest.raises(InstallLinkInvalid):  # the pasted link's token is no bundle token
        install_bundle_download(token=_token(link.url))

    node_id, data = install_bundle_download(token=bundle_token)
    assert node_id == "inst-1"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        config = yaml.safe_load(archive.read("agent_config.yaml"))
    assert config["node_id"] == "inst-1" and config["invite_token"].startswith("cni_")
    with pytest.raises(InstallLinkUsed):
        install_bundle_download(token=bundle_token)
    stages = [
        r.details["stage"]
        for r in AuditEvent.objects.filter(action="node.install_link_used").order_by("id")
    ]
    assert stages == ["script", "bundle"]


def test_install_refusal_script_prints_the_message_and_fails() -> None:
    script = install_refusal_script("link used; $(touch /tmp/pwned) `id`")
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr == "cortex: link used; $(touch /tmp/pwned) `id`\n"
