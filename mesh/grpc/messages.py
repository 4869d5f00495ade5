"""Translations between protobuf messages and plain data, and the per-node output limiter."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mesh.agent.pb import mesh_pb2


class RateLimiter:
    """Token bucket on output bytes per node: a fast node is slowed down, never cut off."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    async def consume(self, amount: int) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= amount
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


def policy_pb(policy: dict[str, Any]) -> mesh_pb2.SandboxPolicy:
    mode = (
        mesh_pb2.SandboxPolicy.STRICT
        if policy.get("mode") == "strict"
        else mesh_pb2.SandboxPolicy.PERMISSIVE
    )
    return mesh_pb2.SandboxPolicy(
        mode=mode,
        allowed_commands=list(policy.get("allowed_commands", [])),
        denied_commands=list(policy.get("denied_commands", [])),
        sensitive_commands=list(policy.get("sensitive_commands", [])),
    )


def skills_pb(skills: dict[str, Any]) -> mesh_pb2.SkillConfig:
    return mesh_pb2.SkillConfig(
        shell=bool(skills.get("shell")),
        files=bool(skills.get("files")),
        browser=bool(skills.get("browser")),
        max_concurrent_tasks=int(skills.get("max_concurrent_tasks", 1)),
    )


def stats_dict(stats: mesh_pb2.NodeStats) -> dict[str, Any]:
    return {
        "cpu_percent": stats.cpu_percent,
        "cpu_per_core": list(stats.cpu_per_core),
        "cpu_count": stats.cpu_count,
        "cpu_freq_mhz": stats.cpu_freq_mhz,
        "memory_used": stats.memory_used,
        "memory_total": stats.memory_total,
        "memory_available": stats.memory_available,
        "memory_percent": stats.memory_percent,
        "load_avg": list(stats.load_avg),
        "active_tasks": stats.active_tasks,
    }
