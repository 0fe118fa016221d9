"""What every service of the exchange shares: settings, JSON logs, the gRPC server's life."""
