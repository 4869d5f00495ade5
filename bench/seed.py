"""Seed a bench database: an admin, two users with 10 / 1,000 visible nodes, N nodes with secrets.

usage: DJANGO_SETTINGS_MODULE=bench.settings python -m bench.seed --nodes N --probes P --out F
Writes F (JSON): API tokens, node ids with their plaintext credentials, heartbeat-probe tasks.
Bulk inserts (not the services) because only the rows matter here and 5,000 audited
registrations would take minutes; the rows are what `node_create` + `invite_exchange` leave.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.db import transaction  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services.tokens import token_create  # noqa: E402
from mesh.models import Node, NodeCredential, NodeGroupAccess, Task, TaskStatus  # noqa: E402
from mesh.services._common import fingerprint_of, sha256_hex  # noqa: E402

NODE_PREFIX = "bench-"


def node_id(i: int) -> str:
    return f"{NODE_PREFIX}{i:05d}"


def seed(nodes: int, probes: int) -> dict[str, Any]:
    """Create everything once (idempotent on an empty database)."""
    salt = secrets.token_urlsafe(8)
    out: dict[str, Any] = {"tokens": {}, "nodes": [], "probe_tasks": {}}
    with transaction.atomic():
        admin = User.objects.create_superuser("admin@bench.local", "bench-password")
        out["tokens"]["admin"] = token_create(actor=None, user=admin, name="bench")[1]
        groups = {}
        for size in (10, 1000):
            group = Group.objects.create(name=f"bench-g{size}")
            user = User.objects.create_user(f"u{size}@bench.local", "bench-password")
            user.groups.add(group)
            groups[size] = group
            out["tokens"][f"u{size}"] = token_create(actor=None, user=user, name="bench")[1]
        rows = [
            Node(node_id=node_id(i), display_name=node_id(i), offline_reason="never_connected")
            for i in range(nodes)
        ]
        Node.objects.bulk_create(rows, batch_size=500)
        by_id = dict(Node.objects.values_list("node_id", "pk"))
        creds = []
        for i in range(nodes):
            secret = f"cnc_bench{i}_{salt}"
            creds.append(
                NodeCredential(
                    node_id=by_id[node_id(i)],
                    secret_hash=sha256_hex(secret),
                    fingerprint=fingerprint_of(secret),
                )
            )
            out["nodes"].append([node_id(i), secret])
        NodeCredential.objects.bulk_create(creds, batch_size=500)
        access = [
            NodeGroupAccess(node_id=by_id[node_id(i)], group=groups[size])
            for size in (10, 1000)
            for i in range(min(size, nodes))
        ]
        NodeGroupAccess.objects.bulk_create(access, batch_size=500)
        tasks = [
            Task(
                node_id=by_id[node_id(i)],
                requested_by=admin,
                kind="shell",
                payload={"command": "true"},
                timeout=86400.0,
                status=TaskStatus.RUNNING,
                last_seq=1,
            )
            for i in range(min(probes, nodes))
        ]
        Task.objects.bulk_create(tasks, batch_size=500)
        out["probe_tasks"] = {
            nid: str(pk)
            for nid, pk in Task.objects.filter(node__node_id__startswith=NODE_PREFIX).values_list(
                "node__node_id", "pk"
            )
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--probes", type=int, default=50)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    data = seed(a.nodes, a.probes)
    with open(a.out, "w") as fh:
        json.dump(data, fh)
    print(json.dumps({"nodes": len(data["nodes"]), "probes": len(data["probe_tasks"])}))


if __name__ == "__main__":
    main()
