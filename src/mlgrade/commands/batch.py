"""CLI commands: batch (registered on mlgrade.cli.app)."""

from __future__ import annotations
