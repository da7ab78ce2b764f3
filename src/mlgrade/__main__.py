"""``mlgrade`` and ``python -m mlgrade``: the CLI (:mod:`mlgrade.cli`), with the kernel of a
plain ``check`` started before the CLI's own modules load (:mod:`mlgrade.commands.early`)."""

from __future__ import annotations

import sys


def main() -> None:
    """Console entry point."""
    from mlgrade.commands.early import forget_kernel, start_kernel

    try:
        start_kernel(sys.argv[1:])
        from mlgrade.cli import main as cli

        cli()
    except KeyboardInterrupt:  # before the CLI took Ctrl-C over (it exits 130 the same way)
        sys.exit(130)
    finally:
        forget_kernel()


if __name__ == "__main__":
    main()
