"""One module per `mme-factory` subcommand; each exposes `register(commands)`."""
