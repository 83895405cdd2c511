"""The web front door: a FastAPI app over the same services as the CLI."""

from monitor.web.app import create_app

__all__ = ["create_app"]
