"""CLI commands: platforms (registered on mlgrade.cli.app)."""

from __future__ import annotations
