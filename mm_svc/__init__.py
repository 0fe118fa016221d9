"""The market maker (`python -m mm_svc`) and the simulated traders (`python -m mm_svc.flow`).

Both are plain gRPC clients of engine_svc with their own user ids: they place and cancel
orders through the same contract as everyone else and have no special powers.
"""
