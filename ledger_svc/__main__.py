"""python -m ledger_svc: run the ledger service (ingest and queries)."""

import asyncio

from ledger_svc.settings import LedgerSettings
from servicekit.memory import tune_gc
from servicekit.process import start_process


def main() -> None:
    settings = start_process("ledger", LedgerSettings.from_env)
    from ledger_svc.server import serve

    tune_gc()
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
