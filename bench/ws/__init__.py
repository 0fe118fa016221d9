"""The WebSocket fan-out benchmark: the whole stack, one gateway, many picows clients."""
