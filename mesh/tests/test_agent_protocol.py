"""The real agent (in-process) against the real grpc.aio hub server over loopback.

A small TCP proxy sits between them so a test can cut the network like a flaky link would.
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
from pathlib import Path
from typing import Any

import psutil
import pytest
from asgiref.sync import sync_to_async

from cortex.testing import child_processes, process_gone, wait_until_async
from mesh import services
from mesh.agent.client import Agent
from mesh.agent.config import parse_config
from mesh.agent.credentials import fingerprint
from mesh.agent.sandbox import Policy
from mesh.agent.skills.browser import browser_available
from mesh.models import TERMINAL_STATUSES, Node, NodeCredential, Task, TaskStatus
from mesh.selectors import task_text

pytestmark = pytest.mark.django_db(transaction=True)


class Proxy:
    """A loopback TCP proxy that can drop every connection (and refuse new ones) on demand."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.server: asyncio.base_events.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        self.accepting = True
        self.address = ""

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self.address

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.links.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for link in list(self.links):
            with contextlib.suppress(Exception):
                link.transport.abort()
        self.links.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def agent_config(tmp_path: Path, address: str, node_id: str, token: str, **extra: Any):  # type: ignore[no-untyped-def]
    data = {
        "hub": {"address": address},
        "node_id": node_id,
        "invite_token": token,
        "state_dir": str(tmp_path / node_id / "state"),
        "workspace_root": str(tmp_path / node_id / "workspace"),
        "shell": {"cancel_grace_s": [0.5, 0.5], "drain_timeout_s": 0.5},
        "reconnect": {"initial_s": 0.05, "factor": 1.6, "max_s": 0.5},
        **extra,
    }
    return parse_config(data, config_path=tmp_path / "agent_config.yaml")


@contextlib.asynccontextmanager
async def running_agent(config):  # type: ignore[no-untyped-def]
    agent = Agent(config)
    job = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(job, timeout=20)


@sync_to_async
def db_node(node_id: str) -> Node:
    return Node.objects.get(node_id=node_id)


@sync_to_async
def db_task(pk) -> Task:  # type: ignore[no-untyped-def]
    return Task.objects.select_related("node").get(pk=pk)


async def dispatch(user, node_id: str, kind: str, payload: dict, timeout: float = 20.0) -> Task:  # type: ignore[no-untyped-def]
    node = await db_node(node_id)
    return await sync_to_async(services.task_dispatch)(
        actor=user, node=node, kind=kind, payload=payload, timeout=timeout
    )


async def finished(pk, timeout: float = 20.0) -> Task:  # type: ignore[no-untyped-def]
    async def done() -> Task | None:
        task = await db_task(pk)
        return task if task.status in TERMINAL_STATUSES else None

    return await wait_until_async(done, timeout=timeout)


@pytest.fixture
def node_a(make_node, user, grant):  # type: ignore[no-untyped-def]
    node, token = make_node("node-a")
    grant(user, node)
    return node, token


@pytest.fixture
async def proxy(mesh_address):  # type: ignore[no-untyped-def]
    p = Proxy(mesh_address)
    await p.start()
    yield p
    await p.close()


async def test_agent_joins_connects_beats_and_runs_shell(tmp_path, proxy, node_a, user):
    _, token = node_a
    config = agent_config(tmp_path, proxy.address, "node-a", token)
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        assert config.credential_file.read_text().startswith("cnc_")
        assert stat.S_IMODE(config.credential_file.stat().st_mode) == 0o600
        node = await wait_until_async(
            lambda: sync_to_async(
                lambda: Node.objects.filter(node_id="node-a", stats__cpu_count__gt=0).first()
            )()
        )
        assert node.status == "online"
        assert node.capabilities == {
            "shell": True,
            "files": True,
            "browser": browser_available(),  # only with Playwright and a Chromium present
        }
        assert node.stats["memory_total"] == psutil.virtual_memory().total
        assert set(node.stats) >= {"cpu_percent", "cpu_per_core", "load_avg", "active_tasks"}

        task = await dispatch(user, "node-a", "shell", {"command": "echo hi; echo oops >&2; pwd"})
        done = await finished(task.pk)
        assert (done.status, done.exit_code) == (TaskStatus.SUCCEEDED, 0)
        stdout, stderr = await sync_to_async(task_text)(task=done)
        assert stdout == f"hi\n{config.workspace_root}\n"
        assert stderr == "oops\n"

        failing = await finished(
            (await dispatch(user, "node-a", "shell", {"command": "exit 4"})).pk
        )
        assert (failing.status, failing.exit_code, failing.error_code) == (
            TaskStatus.FAILED,
            4,
            "nonzero_exit",
        )
        await wait_until_async(lambda: not agent.spool.records)


async def test_agent_files_skill_and_jail(tmp_path, proxy, node_a, user):
    _, token = node_a
    config = agent_config(tmp_path, proxy.address, "node-a", token)
    (tmp_path / "outside.txt").write_text("secret")
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        wrote = await finished(
            (
                await dispatch(
                    user,
                    "node-a",
                    "files",
                    {"action": "write", "path": "a/b.txt", "content": "hey"},
                )
            ).pk
        )
        assert (wrote.status, wrote.result) == (
            TaskStatus.SUCCEEDED,
            {"path": "a/b.txt", "size": 3},
        )
        read = await finished(
            (await dispatch(user, "node-a", "files", {"action": "read", "path": "a/b.txt"})).pk
        )
        assert read.result == {"path": "a/b.txt", "size": 3, "encoding": "utf-8", "content": "hey"}
        escape = await finished(
            (
                await dispatch(
                    user, "node-a", "files", {"action": "read", "path": "../../outside.txt"}
                )
            ).pk
        )
        assert (escape.status, escape.error_code, escape.result) == (
            TaskStatus.FAILED,  # REJECTED on the wire: nothing was read
            "path_outside_workspace",
            None,
        )
        assert escape.error_message == "The path '../../outside.txt' is outside the workspace."
        assert agent.runner.workspace.root == config.workspace_root


PAGE = b"<html><head><title>Cortex test page</title></head><body><p>Hello, node.</p></body></html>"


@contextlib.contextmanager
def page_server():  # type: ignore[no-untyped-def]
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  # http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_browser_skill_follows_the_capability(tmp_path, proxy, node_a, user, staff_user):
    _, token = node_a
    node = await db_node("node-a")
    policy = {**node.sandbox_policy, "browser": {"allowed_domains": ["127.0.0.1/32"]}}
    await sync_to_async(services.node_update)(
        actor=staff_user,
        node=node,
        data={"skill_config": {"browser": True}, "sandbox_policy": policy},
    )
    config = agent_config(tmp_path, proxy.address, "node-a", token)
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        assert agent.runner.capabilities()["browser"] is browser_available()
        with page_server() as url:
            if not browser_available():  # the hub never assigns browser work to this node
                with pytest.raises(services.CapabilityMissing):
                    await dispatch(user, "node-a", "browser", {"action": "navigate", "url": url})
                return
            await wait_until_async(_capability, timeout=15)  # the hub stored the hello's capability
            task = await dispatch(user, "node-a", "browser", {"action": "navigate", "url": url}, 60)
            opened = await finished(task.pk, timeout=90)
            # The page stays open: reading it is a second task without a URL.
            task = await dispatch(user, "node-a", "browser", {"action": "text"}, 60)
            done = await finished(task.pk, timeout=90)
        assert (opened.status, opened.result["status"]) == (TaskStatus.SUCCEEDED, 200)
        assert (done.status, done.error_message) == (TaskStatus.SUCCEEDED, "")
        assert done.result == {
            "tab": 1,
            "url": url,
            "title": "Cortex test page",
            "tabs": [{"tab": 1, "url": url, "title": "Cortex test page"}],
            "text": "Hello, node.",
            "truncated": False,
        }


async def _capability() -> bool:
    node = await db_node("node-a")
    return bool((node.capabilities or {}).get("browser"))


async def test_agent_rechecks_commands_with_its_own_policy(tmp_path, proxy, node_a, user):
    _, token = node_a
    config = agent_config(tmp_path, proxy.address, "node-a", token)
    marker = tmp_path / "ran"
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        # As if a stricter PolicyUpdate reached the agent before the hub's own view changed.
        agent.runner.policy = Policy.from_dict({"mode": "strict", "allowed_commands": ["ls"]})
        task = await dispatch(user, "node-a", "shell", {"command": f"ls; touch {marker}"})
        done = await finished(task.pk)
        assert done.error_code == "command_not_allowed"
        assert done.error_message == "'touch' is not in the node's allowed commands (strict mode)."
        assert done.status == TaskStatus.FAILED  # REJECTED on the wire
        assert done.last_seq == 0
        assert not marker.exists()


async def test_policy_update_reaches_the_agent(tmp_path, proxy, node_a, staff_user):
    node, token = node_a
    config = agent_config(tmp_path, proxy.address, "node-a", token)
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        assert agent.runner.policy.mode == "permissive"
        await sync_to_async(services.node_update)(
            actor=staff_user,
            node=await db_node("node-a"),
            data={"sandbox_policy": {"mode": "strict", "allowed_commands": ["ls"]}},
        )
        await wait_until_async(lambda: agent.runner.policy.mode == "strict")
        assert agent.runner.policy.allowed_commands == ("ls",)
    # A stopping agent says goodbye: the hub records a clean shutdown.
    node = await wait_until_async(
        lambda: sync_to_async(
            lambda: Node.objects.filter(
                node_id="node-a", status="offline", offline_reason="goodbye"
            ).first()
        )()
    )
    assert node.connection_id == ""


async def test_cancel_kills_the_process_tree(tmp_path, proxy, node_a, user):
    _, token = node_a
    config = agent_config(tmp_path, proxy.address, "node-a", token)
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        task = await dispatch(user, "node-a", "shell", {"command": "sleep 600 & sleep 600"}, 900)

        async def pids() -> list[int]:
            record = agent.spool.records.get(str(task.pk))
            if not record or not record.process:
                return []
            root = record.process["pid"]
            return [root, *child_processes(root, recursive=True)]

        tree = await wait_until_async(lambda: _at_least(pids, 3))
        await sync_to_async(services.task_cancel)(actor=user, task=await db_task(task.pk))
        done = await finished(task.pk)
        assert done.status == TaskStatus.CANCELLED
        for pid in tree:
            assert process_gone(pid)


async def _at_least(pids, n: int):  # type: ignore[no-untyped-def]
    found = await pids()
    return found if len(found) >= n else None


async def test_output_spooled_across_a_network_cut_is_resent(tmp_path, proxy, node_a, user):
    _, token = node_a
    config = agent_config(tmp_path, proxy.address, "node-a", token)
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        command = (
            "echo one; while [ ! -e go ]; do sleep 0.02; done; echo two; sleep 0.3; echo three"
        )
        task = await dispatch(user, "node-a", "shell", {"command": command})
        await wait_until_async(lambda: _seq_at_least(task.pk, 1))
        proxy.accepting = False
        proxy.cut()
        (config.workspace_root / "go").touch()  # "two" is produced while the link is down
        record = agent.spool.records[str(task.pk)]
        await wait_until_async(lambda: record.last_seq >= 2, timeout=5)
        assert (await db_task(task.pk)).last_seq == 1
        proxy.accepting = True
        done = await finished(task.pk)
        assert done.status == TaskStatus.SUCCEEDED
        stdout, _ = await sync_to_async(task_text)(task=done)
        assert stdout == "one\ntwo\nthree\n"
        assert done.last_seq == 3


async def _seq_at_least(pk, n: int) -> bool:  # type: ignore[no-untyped-def]
    return (await db_task(pk)).last_seq >= n


async def test_restarted_agent_resumes_output_and_result_from_its_spool(
    tmp_path, mesh_address, node_a, user
):
    """A previous agent process held a task and died; the new one finishes it from disk."""
    from mesh.agent.credentials import CredentialStore
    from mesh.agent.pb import mesh_pb2
    from mesh.agent.spool import Spool
    from mesh.tests.meshkit import TestNode, join

    _, token = node_a
    credential = await join(mesh_address, "node-a", token)
    old = TestNode(mesh_address, "node-a", credential)
    await old.connect()
    task = await dispatch(user, "node-a", "shell", {"command": "echo a; echo b"})
    assign = (await old.recv("task_assign")).task_assign
    await old.send(task_started=mesh_pb2.TaskStarted(task_id=assign.task_id))
    await old.output(assign.task_id, 1, b"a\n")
    await old.recv("output_ack")
    await old.hang_up()  # the old process is gone; its spool stays on disk
    config = agent_config(tmp_path, mesh_address, "node-a", "")
    CredentialStore(config.credential_file).save(credential)
    spool = Spool(config.spool_dir)
    spool.begin(assign.task_id)
    spool.add_output(assign.task_id, mesh_pb2.STDOUT, b"a\n")
    spool.add_output(assign.task_id, mesh_pb2.STDOUT, b"b\n")
    spool.set_result(assign.task_id, {"outcome": "SUCCEEDED", "exit_code": 0})
    async with running_agent(config) as agent:
        done = await finished(task.pk)
        assert (done.status, done.exit_code, done.last_seq) == (TaskStatus.SUCCEEDED, 0, 2)
        assert await sync_to_async(task_text)(task=done) == ("a\nb\n", "")
        await wait_until_async(lambda: not agent.spool.records)
    assert list(config.spool_dir.iterdir()) == []


async def test_credential_rotation_is_saved_acked_and_used(tmp_path, proxy, node_a, staff_user):
    _, token = node_a
    config = agent_config(tmp_path, proxy.address, "node-a", token)
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        first = config.credential_file.read_text().strip()
        await sync_to_async(services.credential_rotate)(
            actor=staff_user, node=await db_node("node-a")
        )

        async def rotated() -> str | None:
            text = config.credential_file.read_text().strip()
            return text if text != first else None

        second = await wait_until_async(rotated)
        assert stat.S_IMODE(config.credential_file.stat().st_mode) == 0o600

        async def confirmed() -> bool:
            return await sync_to_async(
                lambda: NodeCredential.objects.filter(
                    node__node_id="node-a", state="active", fingerprint=fingerprint(second)
                ).exists()
            )()

        await wait_until_async(confirmed)
        agent.connected.clear()
        proxy.cut()  # reconnect: only the rotated credential can work now
        await asyncio.wait_for(agent.connected.wait(), timeout=15)


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for localhost/127.0.0.1 and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "hub.pem", tmp_path / "hub.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_agent_dials_a_tls_hub_with_the_bundled_certificate(
    tmp_path, mesh_settings, make_node, free_port, user, grant
):
    from mesh.grpc.server import serve

    cert, key = self_signed(tmp_path)
    mesh_settings.GRPC_TLS_CERT = str(cert)
    mesh_settings.GRPC_TLS_KEY = str(key)
    node, token = await sync_to_async(make_node)("tls-node")
    await sync_to_async(grant)(user, node)
    address = f"127.0.0.1:{free_port()}"
    stop = asyncio.Event()
    server = asyncio.create_task(serve(address, stop_event=stop, grace=1.0))
    try:
        plain = agent_config(tmp_path / "plain", address, "tls-node", token)
        plain.reconnect_max = 0.2
        refused = Agent(plain)
        job = asyncio.create_task(refused.run())
        await asyncio.sleep(1.5)  # a plaintext client never gets through, and spends nothing
        assert not refused.connected.is_set()
        refused.stop()
        await asyncio.wait_for(job, timeout=10)
        tls = {"enabled": True, "ca_file": str(cert), "server_name": ""}
        config = agent_config(
            tmp_path, address, "tls-node", token, hub={"address": address, "tls": tls}
        )
        async with running_agent(config) as agent:
            await asyncio.wait_for(agent.connected.wait(), timeout=15)
            task = await dispatch(user, "tls-node", "shell", {"command": "echo over tls"})
            done = await finished(task.pk)
            assert await sync_to_async(task_text)(task=done) == ("over tls\n", "")
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=20)


async def test_join_refused_exits_with_config_error(tmp_path, proxy, node_a):
    config = agent_config(tmp_path, proxy.address, "node-a", "cni_wrong")
    code = await asyncio.wait_for(Agent(config).run(), timeout=20)
    assert code == 78
    assert not config.credential_file.exists()


async def test_hub_restart_twenty_agents_reconnect_spread_without_auth_failure(
    tmp_path, mesh_settings, make_node, free_port, caplog
):
    from mesh.grpc.server import serve
    from mesh.tests.meshkit import wait_serving

    address = f"127.0.0.1:{free_port()}"
    configs = []
    for i in range(20):
        node_id = f"crowd-{i:02d}"
        _, token = await sync_to_async(make_node)(node_id)
        configs.append(agent_config(tmp_path, address, node_id, token))
    stop = asyncio.Event()
    server = asyncio.create_task(serve(address, stop_event=stop, grace=1.0))
    await wait_serving(address)
    agents = [Agent(c) for c in configs]
    jobs = [asyncio.create_task(a.run()) for a in agents]
    try:
        await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 30)
        for a in agents:
            a.connected.clear()
        stop.set()
        await asyncio.wait_for(server, timeout=20)
        stop = asyncio.Event()
        await asyncio.sleep(0.5)
        server = asyncio.create_task(serve(address, stop_event=stop, grace=1.0))
        await wait_serving(address)
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def back(agent: Agent) -> None:
            await agent.connected.wait()
            times.append(loop.time())

        await asyncio.wait_for(asyncio.gather(*(back(a) for a in agents)), timeout=40)
        assert len(times) == 20
        assert max(times) - min(times) > 0.3  # spread in time, not one wave
        assert "refused this node's credential" not in caplog.text
        online = await sync_to_async(
            lambda: Node.objects.filter(node_id__startswith="crowd-", status="online").count()
        )()
        assert online == 20
    finally:
        for a in agents:
            a.stop()
        await asyncio.wait_for(asyncio.gather(*jobs), timeout=30)
        stop.set()
        await asyncio.wait_for(server, timeout=20)
