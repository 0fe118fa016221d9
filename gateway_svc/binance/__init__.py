"""The Binance-spot dialect: `/api/v3` over the same handlers' backends as the other two."""
