"""The command line: click commands only. Parse options, load config, call the engine, print.

This is the one place that prints, exits, configures logging, and turns a TriageError into a
message and an exit code.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from triage import __version__, engine
from triage.config import Config, find_config_path, load_config
from triage.errors import TriageError

log = logging.getLogger(__name__)


class TriageGroup(click.Group):
    """A group whose commands' TriageErrors become one message on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TriageError as exc:
            click.echo(f"triage: {exc}", err=True)
            ctx.exit(exc.exit_code)


@dataclass
class State:
    config_path: Path | None
    _config: Config | None = field(default=None, init=False)

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(find_config_path(self.config_path))
            logging.getLogger("triage").setLevel(
                min(
                    logging.getLogger("triage").level or logging.INFO,
                    getattr(logging, self._config.log_level.upper()),
                )
            )
        return self._config


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("triage").setLevel(level)
    # imapclient's debug log is the wire protocol, which carries message bodies.
    logging.getLogger("imapclient").setLevel(logging.WARNING)


pass_state = click.make_pass_decorator(State)


@click.group(cls=TriageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $TRIAGE_CONFIG, then the platform config dir).",
)
@click.option("-v", "--verbose", count=True, help="Log more (debug).")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.version_option(__version__, prog_name="triage")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool) -> None:
    """triage files a buyer's vendor mail: one folder per trusted partner, a generic bucket for
    every other vendor, and colleagues' mail left in the inbox."""
    _setup_logging(verbose, quiet)
    ctx.obj = State(config_path)


def _account_option(func: Any) -> Any:
    return click.option(
        "--account",
        "-a",
        "account_name",
        help="Account name from the config (default: the only one).",
    )(func)


@cli.command()
@_account_option
@pass_state
def check(state: State, account_name: str | None) -> None:
    """Connect, log in, and show the server's capabilities and the role of every folder."""
    config = state.config()
    account = config.account(account_name)
    report = engine.check(account, config.run)
    click.echo(f"Connected: {report.where}")
    caps = ", ".join(
        f"{name} {'yes' if has else 'no'}" for name, has in report.capabilities.items()
    )
    click.echo(f"Capabilities: {caps}")
    click.echo("Folders:")
    width = max((len(r.folder.name) for r in report.roles), default=10)
    for role in report.roles:
        click.echo(f"  {role.folder.name:<{width}}  {role.role:<8} {role.why}")
    for note in report.notes:
        click.echo(f"Note: {note}")


def main() -> None:
    """Entry point of the `triage` console script and `python -m triage`."""
    cli(prog_name="triage")
