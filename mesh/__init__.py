"""Nodes, grants, the gRPC control plane and the task journal."""
