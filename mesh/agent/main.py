"""Command line: `python -m cortex_agent --config agent_config.yaml`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .client import Agent
from .config import AgentConfig, ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the configuration and run the agent until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="cortex_agent", description="Cortex Hub node agent")
    parser.add_argument("--config", default="agent_config.yaml", help="path to agent_config.yaml")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"cortex_agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(_run(config))


async def _run(config: AgentConfig) -> int:
    agent = Agent(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)
    return await agent.run()
