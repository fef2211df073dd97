"""The ``civdesk`` command line (no Qt here): argparse commands, progress, JSON output."""
