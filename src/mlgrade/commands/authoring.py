"""CLI commands: authoring (registered on mlgrade.cli.app)."""

from __future__ import annotations
