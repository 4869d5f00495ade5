"""Generate the Python protobuf and gRPC modules into mesh/agent/pb/ (`make proto`).

The generated modules live inside the agent package so the node agent stays self-contained;
the hub imports them from there. The gRPC module's import is made relative.

The generators add checks that refuse any runtime older than themselves (protobuf's
`ValidateProtobufRuntimeVersion`, gRPC's `GRPC_GENERATED_VERSION`). The agent runs on the Python
of the node, where the newest runtimes may not install (Python 3.9 stops at grpcio 1.80 and
protobuf 6), so both checks are removed: the floors in mesh/agent/requirements.txt are the
versions the agent's tests prove the stubs work with (mesh/tests/test_agent_pythons.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "mesh" / "protos"
PROTO = PROTO_ROOT / "cortex" / "mesh" / "v1" / "mesh.proto"


# (pattern, file): each must match exactly once, so a changed generator fails loudly here.
_VERSION_CHECKS = (
    (r"^from google\.protobuf import runtime_version as _runtime_version\n", "mesh_pb2.py"),
    (r"^_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:  .*\n)*\)\n", "mesh_pb2.py"),
    (
        r"^GRPC_GENERATED_VERSION = .*\n(?:.*\n)*?"
        r"if _version_not_supported:\n(?:    .*\n)*    \)\n",
        "mesh_pb2_grpc.py",
    ),
)


def strip_version_checks(name: str, text: str) -> str:
    """Remove the generators' runtime version checks from one generated module."""
    for pattern, target in _VERSION_CHECKS:
        if target != name:
            continue
        text, count = re.subn(pattern, "", text, flags=re.MULTILINE)
        if count != 1:
            sys.exit(f"gen_proto: expected one version check {pattern!r} in {name}, found {count}")
    return text


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(PROTO),
        ]
    )
    if code != 0:
        sys.exit(code)
    generated = out / "cortex" / "mesh" / "v1"
    for name in ("mesh_pb2.py", "mesh_pb2.pyi", "mesh_pb2_grpc.py"):
        text = (generated / name).read_text()
        text = re.sub(
            r"^from cortex\.mesh\.v1 import mesh_pb2",
            "from . import mesh_pb2",
            text,
            flags=re.MULTILINE,
        )
        (out / name).write_text(strip_version_checks(name, text))
    for path in sorted(generated.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    for path in (out / "cortex" / "mesh" / "v1", out / "cortex" / "mesh", out / "cortex"):
        if path.exists():
            path.rmdir()


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "mesh" / "agent" / "pb")
