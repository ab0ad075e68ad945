"""The public OpenAI-compatible API: ``create_app(settings)`` builds it."""

from gateway.app import create_app

__all__ = ["create_app"]
