"""The command line: a thin shell over the pipeline.

Subcommands live in ``verify/commands/`` and are imported only when invoked, so that ``cpython-verify
source`` does not pay for importing the build or comparison stages. Every error the tool raises on
purpose is a :class:`verify.common.errors.VerifyError`; here it becomes one line on stderr and its exit code.
Ctrl-C, SIGTERM and SIGHUP become :class:`verify.common.interrupts.Interrupted` (the entry point,
``verify/__main__.py``, installs that before these imports; :func:`main` for its own run): here, one
line and ``128 + signal``, after every cleanup on the way out has run.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import NoReturn

import click

from verify import __version__
from verify.common import interrupts, progress
from verify.common.errors import EXIT_ERROR, VerifyError

# name -> "module:attribute" of the click command; imported on first use.
_COMMANDS: dict[str, str] = {
    "source": "verify.commands.source:source",
    "env": "verify.commands.env:env",
    "rebuild": "verify.commands.rebuild:rebuild",
    "compare": "verify.commands.compare:compare",
    "audit": "verify.commands.audit:audit",
    "attest": "verify.commands.attest:attest",
    "verify-attestation": "verify.commands.verify_attestation:verify_attestation",
    "peers": "verify.commands.peers:peers",
    "releases": "verify.commands.releases:releases",
    "plan": "verify.commands.plan:plan",
    "merge": "verify.commands.merge:merge",
    "check": "verify.commands.check:check",
    "cache": "verify.commands.cache:cache",
    "docs": "verify.commands.docs:docs",
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported when used, listing only those that exist."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in _COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A command whose own module is absent (a trimmed install) is left out of the CLI; a module
            # that fails to import one of *its* dependencies is a real error and surfaces.
            if exc.name == module_name:
                return None
            raise
        command: click.Command = getattr(module, attribute)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cpython-verify")
def cli() -> None:
    """Verify that a CPython is exactly what its release managers signed, rebuilt bit for bit.

    Exit codes: 0 verified / identical, 1 verification failed / differences, 2 operational error.

    The pages --help texts name as docs/NAME.md are installed with the tool: `cpython-verify docs` lists
    them, `cpython-verify docs NAME` prints one. -v/--verbose means the same in every command: show what
    the report otherwise shortens.
    """


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point: run the CLI and turn every error into one line and an exit code."""
    # sigstore/tuf log routine progress ("TUF repository is loaded in offline mode") at WARNING through
    # logging's last-resort handler; our reports already say what was checked and how.
    for noisy in ("sigstore", "tuf"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    progress.configure(enabled=True)  # --quiet / --no-progress turn it off while the options are parsed
    try:
        with interrupts.handling():
            # Without standalone mode click returns a command's exit code instead of exiting.
            result = cli.main(args=argv, prog_name="cpython-verify", standalone_mode=False)
    except interrupts.Interrupted as interrupt:
        # The cleanups ran on the way here (staging, quarantine, the sandbox and its children).
        click.echo(f"cpython-verify: interrupted by {interrupt.name}", err=True)
        sys.exit(interrupt.exit_code)
    except VerifyError as error:
        click.echo(f"cpython-verify: error: {error.message}", err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("cpython-verify: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as error:
        # One line, like every other error: click's own form is usage, a hint and the message on four lines.
        command = error.ctx.command_path if error.ctx is not None else "cpython-verify"
        message = " ".join(error.format_message().split())
        click.echo(f"cpython-verify: error: {message} (see '{command} --help')", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as error:
        click.echo(f"cpython-verify: error: {' '.join(error.format_message().split())}", err=True)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except OSError as error:
        # An I/O failure no stage anticipated (disk full, permission): still one line, exit 2.
        click.echo(f"cpython-verify: error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(result if isinstance(result, int) else 0)
