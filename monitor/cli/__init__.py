"""The ``monitor`` command line: thin front doors over the operations."""

from monitor.cli.app import app, main

__all__ = ["app", "main"]
