"""`python -m mesh.agent --config agent_config.yaml` (or `python -m cortex_agent ...`)."""

from .main import main

raise SystemExit(main())
