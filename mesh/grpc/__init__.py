"""gRPC transport of the mesh app: server, servicers, status table, auth interceptor."""
