"""The pure engine core: no I/O. A command goes in, events come out.

Stages, each in its own module: `parse` (decimal strings -> commands),
`markets` (asset and market rules), `accounts` (available/locked),
`book` (price-time order book), `engine` (the state and the dispatch of each command to
`entry` -> `matching` -> `resting`, `cancels`, `conditional` -> `cascade`, `funds`,
`admin`, `capital`), `state` (state <-> plain data, `state_hash`).
"""

from engine_svc.native import search_path

# Compiled modules (engine_svc/native.py) come first when they match these sources.
__path__ = search_path(__path__)
