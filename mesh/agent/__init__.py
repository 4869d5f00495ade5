"""The Cortex node agent: dials out to the hub, runs shell/files/browser tasks in a workspace.

Self-contained (no Django): it imports only the standard library, grpcio, protobuf, psutil and
PyYAML, and uses relative imports so it runs as `python -m mesh.agent` inside the repository and
as `python -m cortex_agent` when copied into a provisioning bundle.
"""

__version__ = "0.1.0"
