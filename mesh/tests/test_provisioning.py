"""Provisioning: the bundle endpoint, the service and the operator commands."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEvent
from mesh import services
from mesh.agent.config import parse_config
from mesh.models import Node, NodeGroupAccess
from mesh.services.invites import InviteInvalid
from mesh.services.provisioning import provisioning_write

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
BUNDLE_TOP = {"agent_config.yaml", "run.sh", "bootstrap.py", "requirements.txt"}


@pytest.fixture
def node(make_node):  # type: ignore[no-untyped-def]
    node, _ = make_node("gpu-1")
    return node


def _zip(response) -> zipfile.ZipFile:  # type: ignore[no-untyped-def]
    return zipfile.ZipFile(
        io.BytesIO(b"".join(response.streaming_content) if response.streaming else response.content)
    )


# -------------------------------------------------------------------------------- endpoint
def test_admin_downloads_a_bundle(staff_client, node, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_GRPC_ADDRESS = "hub.example.org:50051"
    response = staff_client.get("/api/v1/nodes/gpu-1/bundle/?invite=new")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="cortex-node-gpu-1.zip"'
    assert response["Cache-Control"] == "no-store"
    archive = _zip(response)
    names = set(archive.namelist())
    assert names >= BUNDLE_TOP
    assert {
        "cortex_agent/__init__.py",
        "cortex_agent/__main__.py",
        "cortex_agent/sandbox/policy.py",
    } <= names
    assert {"cortex_agent/pb/mesh_pb2.py", "cortex_agent/pb/mesh_pb2_grpc.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]
    assert all(n in BUNDLE_TOP or n.startswith("cortex_agent/") for n in names)
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
    assert (modes["run.sh"], modes["bootstrap.py"], modes["agent_config.yaml"]) == (
        0o755,
        0o755,
        0o600,
    )
    config_text = archive.read("agent_config.yaml").decode()
    config = parse_config(yaml.safe_load(config_text), config_path=Path("/x/agent_config.yaml"))
    assert config.hub_address == "hub.example.org:50051"
    assert config.node_id == "gpu-1"
    assert config.tls is False
    assert config.tls_ca_file is None
    assert config.invite_token.startswith("cni_")
    # The invite works exactly once.
    services.invite_exchange(node_id="gpu-1", invite_token=config.invite_token)
    with pytest.raises(InviteInvalid):
        services.invite_exchange(node_id="gpu-1", invite_token=config.invite_token)
    event = AuditEvent.objects.get(action="node.bundle_issued")
    assert (event.target_id, event.source, event.actor.email) == (
        "gpu-1",
        "api",
        "root@example.com",
    )
    assert event.details == {
        "grpc_address": "hub.example.org:50051",
        "files": len(names),
        "invite": "issued",
    }
    assert config.invite_token not in str(
        list(AuditEvent.objects.values_list("details", flat=True))
    )


def test_bundle_holds_no_secret_but_its_invite(staff_client, node) -> None:  # type: ignore[no-untyped-def]
    archive = _zip(staff_client.get("/api/v1/nodes/gpu-1/bundle/?invite=new"))
    blob = b"".join(archive.read(n) for n in archive.namelist())
    assert settings.SECRET_KEY.encode() not in blob
    tokens = set(re.findall(rb"cn[ic]_[A-Za-z0-9_-]{16,}", blob))
    config = yaml.safe_load(archive.read("agent_config.yaml"))
    assert tokens == {config["invite_token"].encode()}


def test_a_bundle_never_replaces_a_pending_invite_unasked(staff_client, make_node) -> None:  # type: ignore[no-untyped-def]
    _, pending = make_node("gpu-2")  # creating a node issues its first invite
    refused = staff_client.get("/api/v1/nodes/gpu-2/bundle/")
    assert refused.status_code == 409
    assert refused["Content-Type"] == "application/json"
    assert refused.json()["error"]["code"] == "invite_pending"
    assert not AuditEvent.objects.filter(action="node.bundle_issued").exists()

    # Without a token: the pending invite keeps working; the operator pastes it in.
    bare = _zip(staff_client.get("/api/v1/nodes/gpu-2/bundle/?invite=none"))
    config_text = bare.read("agent_config.yaml").decode()
    assert yaml.safe_load(config_text)["invite_token"] == ""
    assert "paste the node's pending invite token" in config_text
    assert not re.findall(rb"cn[ic]_[A-Za-z0-9_-]{16,}", b"".join(map(bare.read, bare.namelist())))

    # Asked for by name: a new invite replaces the pending one, and the audit row says so.
    fresh = yaml.safe_load(
        _zip(staff_client.get("/api/v1/nodes/gpu-2/bundle/?invite=new")).read("agent_config.yaml")
    )
    assert fresh["invite_token"] not in ("", pending)
    replaced = AuditEvent.objects.filter(action="node.invite", target_id="gpu-2").latest("id")
    assert replaced.details == {"expires_in": settings.MESH_INVITE_TTL, "replaced": 1}
    with pytest.raises(InviteInvalid):
        services.invite_exchange(node_id="gpu-2", invite_token=pending)
    services.invite_exchange(node_id="gpu-2", invite_token=fresh["invite_token"])
    # Once joined, no invite is pending: the default issues one again.
    assert staff_client.get("/api/v1/nodes/gpu-2/bundle/").status_code == 200
    assert staff_client.get("/api/v1/nodes/gpu-2/bundle/?invite=bogus").status_code == 400


def test_the_pending_invite_survives_a_refused_download(staff_client, make_node) -> None:  # type: ignore[no-untyped-def]
    _, pending = make_node("gpu-3")
    assert staff_client.get("/api/v1/nodes/gpu-3/bundle/").status_code == 409
    services.invite_exchange(node_id="gpu-3", invite_token=pending)


def test_bundle_with_tls_ships_the_hub_certificate(staff_client, node, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert = tmp_path / "hub.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings.GRPC_TLS_CERT = str(cert)
    settings.GRPC_TLS_KEY = str(tmp_path / "hub.key")
    archive = _zip(staff_client.get("/api/v1/nodes/gpu-1/bundle/?invite=new"))
    config = yaml.safe_load(archive.read("agent_config.yaml"))
    assert config["hub"]["tls"] == {"enabled": True, "ca_file": "hub_ca.pem", "server_name": ""}
    assert archive.read("hub_ca.pem") == cert.read_bytes()
    assert "hub.key" not in str(archive.namelist())


@pytest.mark.parametrize(
    ("client_name", "path", "status"),
    [
        ("user_client", "/api/v1/nodes/gpu-1/bundle/", 404),
        ("anon_client", "/api/v1/nodes/gpu-1/bundle/", 401),
        ("staff_client", "/api/v1/nodes/nope/bundle/", 404),
    ],
)
def test_bundle_refusals_issue_nothing(request, node, client_name, path, status) -> None:  # type: ignore[no-untyped-def]
    invites_before = node.invites.count()
    response = request.getfixturevalue(client_name).get(path)
    assert response.status_code == status
    assert response.json()["error"]["code"] in {
        "permission_denied",
        "not_authenticated",
        "not_found",
    }
    assert node.invites.count() == invites_before
    assert not AuditEvent.objects.filter(action__in=["node.bundle_issued", "node.invite"]).exists()


# -------------------------------------------------------------------------------- scripts
def test_scripts_are_valid(staff_user, node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    provisioning_write(actor=staff_user, node=node, directory=tmp_path)
    subprocess.run(["bash", "-n", str(tmp_path / "run.sh")], check=True, timeout=30)
    subprocess.run(
        [sys.executable, "-m", "py_compile", str(tmp_path / "bootstrap.py")], check=True, timeout=30
    )
    run_sh = (tmp_path / "run.sh").read_text()
    assert run_sh.startswith("#!/usr/bin/env bash\n")
    assert 'exec "$launcher" bootstrap.py "$@"' in run_sh  # one place for the checks
    bootstrap = (tmp_path / "bootstrap.py").read_text()
    assert '"-m", "venv", env_dir' in bootstrap
    assert '"pip", "install"' in bootstrap and '"requirements.txt"' in bootstrap
    assert '"-m", "cortex_agent", "--config", "agent_config.yaml"' in bootstrap
    assert "MIN_PYTHON = (3, 9)" in bootstrap
    # bootstrap.py must run on any Python far enough to say that it is too old.
    for old in sorted(Path("/root/.pyenv/versions").glob("[23].[5-8].*/bin/python")):
        subprocess.run([str(old), "-m", "py_compile", str(tmp_path / "bootstrap.py")], check=True)
    assert (tmp_path / "agent_config.yaml").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "run.sh").stat().st_mode & 0o777 == 0o755


def test_agent_requirements_are_ranges_that_admit_the_hub_pins() -> None:
    """The agent installs on the node's Python (ranges); the hub's tested pins lie inside them."""
    from packaging.requirements import Requirement

    hub = {
        line.split("==")[0].lower(): line.split("==")[1].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    agent = [
        Requirement(line)
        for line in (ROOT / "mesh" / "agent" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(r.name for r in agent) == ["PyYAML", "grpcio", "protobuf", "psutil"]
    for requirement in agent:
        operators = {spec.operator for spec in requirement.specifier}
        assert operators == {">=", "<"}, f"{requirement} must be a range with a floor and a cap"
        assert hub[requirement.name.lower()] in requirement.specifier, requirement


def test_bundled_agent_imports_without_django(staff_user, node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    provisioning_write(actor=staff_user, node=node, directory=tmp_path)
    code = (
        "import sys, cortex_agent.client, cortex_agent.main;"
        "assert 'django' not in sys.modules, 'django imported';"
        "print(cortex_agent.__version__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.1.0"
    help_text = subprocess.run(
        [sys.executable, "-m", "cortex_agent", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_text.returncode == 0
    assert "--config" in help_text.stdout


# -------------------------------------------------------------------------------- commands
def test_register_node_prints_only_the_invite(capsys) -> None:  # type: ignore[no-untyped-def]
    Group.objects.create(name="ops")
    call_command("register_node", "edge-7", "--name", "Edge 7", "--group", "ops")
    out = capsys.readouterr()
    token = out.out.strip()
    assert re.fullmatch(r"cni_[A-Za-z0-9_-]+", token)
    assert "edge-7" in out.err and token not in out.err
    node = Node.objects.get(node_id="edge-7")
    assert node.display_name == "Edge 7"
    assert list(
        NodeGroupAccess.objects.filter(node=node).values_list("group__name", flat=True)
    ) == ["ops"]
    events = AuditEvent.objects.filter(target_id="edge-7").order_by("id")
    assert [(e.action, e.source, e.actor) for e in events] == [
        ("node.create", "command", None),
        ("node.grant", "command", None),
    ]
    services.invite_exchange(node_id="edge-7", invite_token=token)


def test_register_node_refusals_write_nothing(node) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="No group named 'ghosts'"):
        call_command("register_node", "edge-8", "--group", "ghosts")
    with pytest.raises(CommandError, match="node_exists"):
        call_command("register_node", "gpu-1")
    with pytest.raises(CommandError, match="Invalid node"):
        call_command("register_node", "Bad Id!")
    assert list(Node.objects.values_list("node_id", flat=True)) == ["gpu-1"]
    assert not AuditEvent.objects.filter(source="command").exists()


def test_provision_node_writes_the_bundle(node, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "bundle"
    call_command("provision_node", "gpu-1", "--out", str(out))
    printed = capsys.readouterr().out
    assert f"Wrote the bundle of node gpu-1 to {out}" in printed
    assert "cni_" not in printed
    assert {p.name for p in out.iterdir()} >= BUNDLE_TOP
    assert (out / "cortex_agent" / "sandbox" / "policy.py").read_bytes() == (
        ROOT / "mesh" / "agent" / "sandbox" / "policy.py"
    ).read_bytes()
    assert not list(out.rglob("__pycache__"))
    event = AuditEvent.objects.get(action="node.bundle_issued")
    assert (event.source, event.actor) == ("command", None)


def test_provision_node_unknown_node(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="No node 'ghost'"):
        call_command("provision_node", "ghost", "--out", str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()
    assert not AuditEvent.objects.exists()


def test_grant_revoke_and_rotate_commands(node, capsys) -> None:  # type: ignore[no-untyped-def]
    group = Group.objects.create(name="ops")
    call_command("grant_node", "gpu-1", "ops")
    assert NodeGroupAccess.objects.filter(node=node, group=group).exists()
    call_command("revoke_node", "gpu-1", str(group.pk))
    assert not NodeGroupAccess.objects.filter(node=node, group=group).exists()
    with pytest.raises(CommandError, match="grant_not_found"):
        call_command("revoke_node", "gpu-1", "ops")
    with pytest.raises(CommandError, match="No group 'nobody'"):
        call_command("grant_node", "gpu-1", "nobody")
    call_command("rotate_node_credential", "gpu-1")
    node.refresh_from_db()
    assert node.rotation_requested_at is not None
    actions = list(
        AuditEvent.objects.filter(source="command").order_by("id").values_list("action", flat=True)
    )
    assert actions == ["node.grant", "node.revoke", "node.credential_rotate"]
    assert capsys.readouterr().out.splitlines() == [
        "Group ops may use node gpu-1.",
        "Group ops may no longer use node gpu-1.",
        "Credential rotation requested for node gpu-1.",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("with_wheels=1&python_version=2.7", "python_version"),
        ("with_wheels=1&python_version=3.10;rm", "python_version"),
        ("with_wheels=1&platform=../../etc", "platform"),
        ("with_wheels=maybe", "with_wheels"),
    ],
)
def test_bundle_wheel_options_are_validated_before_any_invite(
    staff_client, node, query, field
) -> None:  # type: ignore[no-untyped-def]
    invites_before = node.invites.count()
    response = staff_client.get(f"/api/v1/nodes/gpu-1/bundle/?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "invalid_input"
    assert field in body["error"]["fields"]
    assert node.invites.count() == invites_before


def test_provision_node_wheel_options_need_with_wheels(node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="go with --with-wheels"):
        call_command("provision_node", "gpu-1", "--out", str(tmp_path), "--python-version", "3.9")
