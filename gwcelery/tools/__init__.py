"""Command-line tools: each module is one ``gwcelery`` subcommand."""
