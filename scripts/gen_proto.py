"""Generate the Python protobuf and gRPC modules into mesh/agent/pb/ (`make proto`).

The generated modules live inside the agent package so the node agent stays self-contained;
the hub imports them from there. The gRPC module's import is made relative.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "mesh" / "protos"
PROTO = PROTO_ROOT / "cortex" / "mesh" / "v1" / "mesh.proto"


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
        (out / name).write_text(text)
    for path in sorted(generated.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    for path in (out / "cortex" / "mesh" / "v1", out / "cortex" / "mesh", out / "cortex"):
        if path.exists():
            path.rmdir()


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "mesh" / "agent" / "pb")
