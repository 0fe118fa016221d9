"""python -m ledger_svc: run the ledger service (ingest and queries)."""

import asyncio
import sys

from ledger_svc.settings import LedgerSettings
from servicekit.logs import configure_logging
from servicekit.settings import SettingsError


def main() -> None:
    try:
        settings = LedgerSettings.from_env()
    except SettingsError as exc:
        sys.exit(f"ledger_svc: configuration error: {exc}")
    configure_logging("ledger", settings.log_level)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    from ledger_svc.server import serve

    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
