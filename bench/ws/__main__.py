"""python -m bench.ws: the WebSocket fan-out benchmark (bench/ws/bench.py)."""

import sys

from bench.ws.bench import main

sys.exit(main())
