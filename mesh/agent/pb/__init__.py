"""Generated protobuf and gRPC modules of cortex.mesh.v1 (`make proto`; do not edit)."""
