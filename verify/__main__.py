"""``python -m verify`` and the ``cpython-verify`` console script.

The interrupt handlers go in before the command line's own imports, so that Ctrl-C during start-up is
handled like Ctrl-C anywhere else (see :mod:`verify.common.interrupts`).
"""

import sys
from typing import NoReturn

from verify.common import interrupts


def main() -> NoReturn:
    """Install the interrupt handlers, then run the CLI (:func:`verify.cli.main`)."""
    interrupts.install()
    try:
        from verify.cli import main as cli_main
    except interrupts.Interrupted as interrupt:
        sys.stderr.write(f"cpython-verify: interrupted by {interrupt.name}\n")
        sys.exit(interrupt.exit_code)
    try:
        cli_main()
    finally:
        interrupts.settle()


if __name__ == "__main__":
    main()
