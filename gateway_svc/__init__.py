"""The public edge: REST and WebSocket in, gRPC out."""
