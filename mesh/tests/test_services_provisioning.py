"""mesh/services/provisioning.py: the wheel target is validated before anything is issued; the
bundle zip carries the files with their modes and an invite only as asked."""

from __future__ import annotations

import io
import sys
import zipfile

import pytest
import yaml

from accounts.models import AuditEvent
from cortex.errors import ValidationFailed
from mesh.models import NodeInvite
from mesh.services.invites import InvitePending
from mesh.services.provisioning import WheelTarget, provisioning_bundle, wheel_target


def test_wheel_target_defaults_to_the_hubs_python_and_a_manylinux_tag() -> None:
    target = wheel_target()
    assert target.python_version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    if sys.platform == "linux":
        assert target.platform.startswith("manylinux2014_")
    assert wheel_target(python_version=" 3.10 ", platform="linux_aarch64") == WheelTarget(
        "3.10", "manylinux2014_aarch64"
    )
    assert wheel_target(python_version="3.9", platform="macosx_11_0_arm64").platform == (
        "macosx_11_0_arm64"
    )


@pytest.mark.parametrize(
    ("python_version", "platform", "fields"),
    [
        ("2.7", "manylinux2014_x86_64", {"python_version"}),
        ("3.10; rm -rf /", "manylinux2014_x86_64", {"python_version"}),
        ("3.10", "win_amd64", {"platform"}),
        ("4.0", "../../etc", {"python_version", "platform"}),
    ],
)
def test_wheel_target_refuses_what_pip_should_never_see(python_version, platform, fields) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as caught:
        wheel_target(python_version=python_version, platform=platform)
    assert caught.value.code == "invalid_input"
    assert set(caught.value.fields or {}) == fields


def _members(data: bytes) -> dict[str, tuple[int, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            i.filename: ((i.external_attr >> 16) & 0o777, archive.read(i))
            for i in archive.infolist()
        }


@pytest.mark.django_db
def test_provisioning_bundle_invite_modes(staff_user, make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("prov-1")  # node_create issued a pending invite
    with pytest.raises(InvitePending) as pending:
        provisioning_bundle(actor=staff_user, node=node)
    assert pending.value.code == "invite_pending"
    assert not AuditEvent.objects.filter(action="node.bundle_issued").exists()

    bare = _members(provisioning_bundle(actor=staff_user, node=node, invite="none"))
    assert not yaml.safe_load(bare["agent_config.yaml"][1]).get("invite_token")
    assert NodeInvite.objects.filter(node=node, revoked_at__isnull=True).count() == 1

    fresh = _members(provisioning_bundle(actor=staff_user, node=node, invite="new"))
    mode, config = fresh["agent_config.yaml"]
    assert mode == 0o600
    assert yaml.safe_load(config)["invite_token"].startswith("cni_")
    assert fresh["run.sh"][0] == 0o755 and fresh["bootstrap.py"][0] == 0o755
    assert NodeInvite.objects.filter(node=node, revoked_at__isnull=True).count() == 1
    rows = AuditEvent.objects.filter(action="node.bundle_issued").order_by("id")
    assert [r.details["invite"] for r in rows] == ["none", "issued"]

    with pytest.raises(ValueError):
        provisioning_bundle(actor=staff_user, node=node, invite="maybe")
