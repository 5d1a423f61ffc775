"""Moved to ``tests.helpers.servers``; this name stays for modules that still import it from here."""

from __future__ import annotations

from tests.helpers.servers import free_port

__all__ = ["free_port"]
