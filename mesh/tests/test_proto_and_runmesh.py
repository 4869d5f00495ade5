"""The generated protocol code is current; runmesh refuses to run without a shared layer; TLS."""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import socket
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cortex.testing import wait_until_async

ROOT = Path(__file__).resolve().parents[2]


def test_generated_protobuf_code_is_not_stale(tmp_path):
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(tmp_path)
    for name in ("mesh_pb2.py", "mesh_pb2.pyi", "mesh_pb2_grpc.py"):
        committed = (ROOT / "mesh" / "agent" / "pb" / name).read_text()
        assert (tmp_path / name).read_text() == committed, f"{name} is stale: run `make proto`"


def test_runmesh_refuses_the_in_memory_layer(settings):
    settings.REDIS_URL = ""
    with pytest.raises(SystemCheckError, match="mesh.W001"):
        call_command("runmesh", "--address", "127.0.0.1:1")


def test_runmesh_bind_failure_is_one_line(settings, redis_url):
    settings.REDIS_URL = redis_url
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match=f"cannot listen for nodes on 127.0.0.1:{port}"):
            call_command("runmesh", "--address", f"127.0.0.1:{port}")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.django_db(transaction=True)
async def test_tls_from_settings(settings, tmp_path, free_port):
    from mesh.grpc.server import serve

    cert, key = _self_signed(tmp_path)
    settings.GRPC_TLS_CERT, settings.GRPC_TLS_KEY = str(cert), str(key)
    address = f"localhost:{free_port()}"
    stop = asyncio.Event()
    server = asyncio.create_task(serve(address, stop_event=stop, grace=0.5))
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())

        async def check() -> list[Any]:
            async with grpc.aio.secure_channel(address, credentials) as channel:
                return [
                    await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=2
                    )
                ]

        (reply,) = await wait_until_async(check, timeout=20, ignore=(grpc.aio.AioRpcError,))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(address) as plain:
            with pytest.raises(grpc.aio.AioRpcError):
                await health_pb2_grpc.HealthStub(plain).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=20)
