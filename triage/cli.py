"""The command line: click commands only. Parse options, load config, call the engine, print.

This is the one place that prints, exits, configures logging, and turns a TriageError into a
message and an exit code.
"""

from __future__ import annotations

import json
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


def _progress(label: str) -> Any:
    """A click progress bar fed by (done, total) callbacks from the engine."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = click.progressbar(
                length=max(total, 1), label=label, file=sys.stderr
            )
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)
            state["bar"] = None

    return update


@cli.command()
@_account_option
@pass_state
def train(state: State, account_name: str | None) -> None:
    """Learn the buyer's filing from their existing folders (partner folders, the generic
    bucket, keep folders) and save the model; prints a time-ordered holdout score per folder."""
    config = state.config()
    account = config.account(account_name)
    report = engine.train(config, account, progress=_progress("Reading mail"))
    click.echo(f"Trained on {report.messages} messages in {len(report.counts)} classes.")
    holdout = report.scores.get("holdout")
    if not holdout:
        click.echo("Holdout: too few messages for a score.")
    else:
        click.echo(
            f"Holdout (train on the oldest {holdout['train_messages']}, score the newest "
            f"{holdout['test_messages']}): accuracy {holdout['accuracy']:.1%}"
        )
        if holdout.get("partner_to_generic") is not None:
            click.echo(
                f"  partner mail sent to the generic bucket: "
                f"{holdout['partner_to_generic']:.1%} (the costly error)"
            )
        width = max(len(name) for name in holdout["per_class"])
        for name, row in holdout["per_class"].items():
            click.echo(
                f"  {name:<{width}}  {row['messages']:>5} messages  recall {row['recall']:.1%}"
            )
    click.echo(f"Model: {report.path}")


@cli.command()
@click.argument(
    "message_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--folder", help="Folder of the message in the mailbox (with --uid).")
@click.option("--uid", type=int, help="UID of the message in --folder.")
@click.option("--top", default=10, show_default=True, help="How many features to show.")
@_account_option
@pass_state
def explain(
    state: State,
    message_file: Path | None,
    folder: str | None,
    uid: int | None,
    top: int,
    account_name: str | None,
) -> None:
    """Why a message goes where it goes: the predicted folder, the confidence, the runner-up and
    the features that pushed it there. Give a message file, or --folder and --uid."""
    config = state.config()
    account = config.account(account_name)
    if message_file is not None:
        message = engine.parse_file(message_file)
    elif folder is not None and uid is not None:
        message = engine.read_message(config, account, folder, uid)
    else:
        raise click.UsageError("give a message file, or --folder and --uid")
    model = engine.load_model(config, account)
    explanation = model.explain(message, top=top)
    prediction = explanation.prediction
    decision = prediction.decide(account.confidence_threshold)
    click.echo(f"Predicted: {prediction.folder} (confidence {prediction.confidence:.2f})")
    click.echo(f"Runner-up: {prediction.runner_up} ({prediction.runner_up_confidence:.2f})")
    if decision != prediction.folder:
        click.echo(
            f"Decision: stays in the inbox (below the threshold {account.confidence_threshold:g})"
        )
    click.echo("Features that pushed it there:")
    for description, weight in explanation.features:
        click.echo(f"  {weight:+.3f}  {description}")


@cli.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--protocol",
    type=click.Choice(["timeline", "kfold"]),
    default="timeline",
    show_default=True,
    help="timeline: sort by Date, train on the first N, test on "
    "the next 100; kfold: stratified 5-fold.",
)
@click.option("--generic", help="The folder that is the generic bucket (enables role rates).")
@click.option("--keep", multiple=True, help="A folder of mail that stays in the inbox.")
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    help="Confidence threshold for the role rates 'as run'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(
    path: Path,
    protocol: str,
    generic: str | None,
    keep: tuple[str, ...],
    threshold: float,
    as_json: bool,
) -> None:
    """Backtest triage and two plain baselines on a folder tree (<folder>/<message files>, or
    a Maildir++ tree), on the same splits."""
    from triage import evaluate as evaluation

    result = evaluation.backtest(
        path,
        protocol,
        generic=generic,
        keep=keep,
        threshold=threshold,
        progress=None if as_json else _progress("Backtesting"),
    )
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(evaluation.format_table(result))


def main() -> None:
    """Entry point of the `triage` console script and `python -m triage`."""
    cli(prog_name="triage")
