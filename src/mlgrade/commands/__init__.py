"""CLI command groups beyond list/start/check. Each module imports ``app`` from
``mlgrade.cli`` and registers its commands; keep grading logic out of them."""
