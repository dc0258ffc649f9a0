"""The command line: click commands only. Parse options, load config, call the engine, print.

This is the one place that prints, exits, configures logging, and turns a TriageError into a
message and an exit code.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from triage import __version__, engine
from triage.config import Config, find_config_path, load_config
from triage.errors import TriageError
from triage.wizard import init

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
    verbose: int = 0
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


_STANDARD_RECORD_KEYS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value) for key, value in vars(record).items() if key not in _STANDARD_RECORD_KEYS
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _setup_logging(verbose: int, quiet: bool, log_format: str = "text") -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
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
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per log line, for machines.",
)
@click.version_option(__version__, prog_name="triage")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool, log_format: str
) -> None:
    """triage files a buyer's vendor mail: one folder per trusted partner, a generic bucket for
    every other vendor, and colleagues' mail left in the inbox."""
    _setup_logging(verbose, quiet, log_format)
    ctx.obj = State(config_path, verbose)


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


class StopFlag:
    """Set by SIGTERM/SIGINT: the current batch finishes, then the command exits 0."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def install(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            if self.requested:  # a second signal: stop now
                raise KeyboardInterrupt
            self.requested = True
            log.info(
                "%s received: finishing the current batch, then exiting",
                signal.Signals(signum).name,
            )

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def _print_report(report: engine.RunReport, inbox: str) -> None:
    if report.reconciled:
        click.echo(
            "Settled unfinished filings from an interrupted run: "
            + ", ".join(f"{k} {v}" for k, v in report.reconciled.items())
        )
    if report.note:
        click.echo(report.note[0].upper() + report.note[1:] + ".")
    if report.learnt:
        click.echo(
            "Learnt from your moves: "
            + ", ".join(f"{count} {kind}" for kind, count in report.learnt.items())
        )
    if report.dry_run:
        for item in report.plan:
            where = "stays" if item.destination == inbox else item.destination
            confidence = "" if item.confidence is None else f"{item.confidence:.2f}"
            subject = item.message.subject.replace("\n", " ")[:60]
            click.echo(
                f"  {where:<28} {confidence:>4} {item.reason:<15} "
                f"{item.message.sender[:32]:<32} {subject}"
            )
        click.echo(f"Dry run: {report.read} new messages; nothing was changed.")
    else:
        click.echo(
            f"Run {report.run_id}: {report.read} new messages, {report.moved} filed"
            + (f", {report.failed} could not be filed (see the log)" if report.failed else "")
            + "."
        )
    for name, count in report.counts.items():
        click.echo(f"  {name:<32} {count:>6}")
    if report.retrain is not None:
        _print_retrain(report.retrain)
    if report.digest is not None:
        _print_digest(report.digest)


def _print_digest(report: engine.DigestReport) -> None:
    d = report.digest
    click.echo(f"Digest {d.week}: {d.subject}")
    if report.delivered:
        click.echo(f"  delivered to {report.folder} as {report.message_id}")
    else:
        click.echo(f"  {report.note}")
    if report.out is not None:
        click.echo(f"  HTML written to {report.out}")


def _print_retrain(report: engine.RetrainReport) -> None:
    def score(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    verdict = "now in use" if report.promoted else "kept aside (it scored worse)"
    click.echo(
        f"Retrained on {report.messages} messages ({report.corrections} corrections): "
        f"holdout {score(report.new_score)} against {score(report.old_score)}; "
        f"{verdict}: {report.path.name}"
    )


@cli.command()
@click.option("--once", is_flag=True, help="One pass, then exit (for cron).")
@click.option("--dry-run", is_flag=True, help="Show what would be filed; change nothing.")
@click.option(
    "--backfill",
    is_flag=True,
    help="Also file mail that was in the inbox before triage's first run.",
)
@_account_option
@pass_state
def run(state: State, once: bool, dry_run: bool, backfill: bool, account_name: str | None) -> None:
    """File new mail from the inbox into partner folders and the generic bucket. Stays up and
    files mail as it arrives (IDLE, or polling where the server has no IDLE) unless --once.
    SIGTERM or Ctrl-C finishes the current batch and exits cleanly."""
    config = state.config()
    account = config.account(account_name)
    stop = StopFlag()
    stop.install()
    inbox = account.folders.inbox
    if once or dry_run or backfill:
        report = engine.run_once(
            config,
            account,
            dry_run=dry_run,
            backfill=backfill,
            progress=_progress("Filing") if backfill else None,
            stop=stop,
        )
        _print_report(report, inbox)
        return
    click.echo(f"Watching {inbox} of {account.name}; Ctrl-C to stop.")
    engine.run_forever(config, account, stop=stop)
    click.echo("Stopped.")


@cli.command()
@click.argument("run_id", required=False, type=int)
@_account_option
@pass_state
def undo(state: State, run_id: int | None, account_name: str | None) -> None:
    """Move back what a run filed (default: the last run that filed anything), where it still
    is where triage put it. Messages put back are never filed again."""
    config = state.config()
    account = config.account(account_name)
    report = engine.undo(config, account, run_id)
    if report.run_id is None:
        click.echo("Nothing to undo: triage has not filed anything yet.")
        return
    click.echo(
        f"Run {report.run_id}: {report.moved_back} messages moved back"
        + (
            f"; {report.not_found} are no longer where triage put them (left alone)"
            if report.not_found
            else ""
        )
        + "."
    )


def _days(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """--since: "7d", "2w" or "10" (days) -> days."""
    match = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", value.lower())
    days = int(match.group(1)) * (7 if match.group(2) == "w" else 1) if match else 0
    if not 1 <= days <= 366:
        raise click.BadParameter(
            f"{value!r} is not a period triage understands; use days or weeks, e.g. 7d or 2w "
            "(at most 366 days)"
        )
    return days


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """--until: an ISO date or date and time; a date means its midnight, in local time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM, e.g. 2026-11-16"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


@cli.command()
@click.option(
    "--since",
    "days",
    default="7d",
    show_default=True,
    callback=_days,
    help="How far back the digest looks: days or weeks, e.g. 7d or 2w.",
)
@click.option(
    "--until",
    "end",
    metavar="DATE",
    callback=_moment,
    help="End of the period (YYYY-MM-DD[THH:MM], local time); default: now.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the digest's HTML page to this file.",
)
@click.option(
    "--no-deliver",
    is_flag=True,
    help="Do not put the digest into the mailbox (with --out: just write the file).",
)
@_account_option
@pass_state
def digest(
    state: State,
    days: int,
    end: datetime | None,
    out: Path | None,
    no_deliver: bool,
    account_name: str | None,
) -> None:
    """Write the weekly digest: per partner, the generic bucket rolled up, and what needs your
    attention (unusual invoices, renewals, bad news, orders and issues with no follow-up, pitches
    that got your name wrong). It is delivered once per week into the digest folder (run it
    twice and you still get one); `triage run` sends it by itself at digest_weekday/digest_hour."""
    config = state.config()
    account = config.account(account_name)
    report = engine.digest(config, account, end=end, days=days, deliver=not no_deliver, out=out)
    _print_digest(report)


@cli.command()
@pass_state
def status(state: State) -> None:
    """Per account: the last run, what was filed where over the last 7 days, and the model's
    age."""
    for item in engine.status(state.config()):
        click.echo(f"{item.account}:")
        if item.last_run is None:
            click.echo("  last run: never")
        else:
            run = item.last_run
            click.echo(f"  last run: #{run.id} {run.mode} started {run.started_at}, {run.status}")
        click.echo(f"  model: {item.model_trained_at or 'none; run triage train'}")
        if item.unfinished:
            click.echo(f"  unfinished filings: {item.unfinished} (settled on the next run)")
        click.echo("  last 7 days:" + ("" if item.week else " nothing decided"))
        for name, count in item.week.items():
            click.echo(f"    {name:<32} {count:>6}")


@cli.command()
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build the sample mailbox in this directory and leave it there.",
)
@click.option("--seed", default=7, show_default=True, help="Which sample buyer to generate.")
@pass_state
def demo(state: State, keep_dir: Path | None, seed: int) -> None:
    """The whole loop on a built-in sample mailbox (a local Maildir; no server, no account):
    learn the buyer's folders, file a new week of mail and score it, let the buyer move two
    messages, retrain, and write the week's digest."""
    import shutil
    import tempfile

    from triage.demo import run_demo

    if not state.verbose:  # the summary below says it all; -v shows the engine's log
        logging.getLogger("triage").setLevel(logging.WARNING)
    if keep_dir is not None:
        if keep_dir.exists() and any(keep_dir.iterdir()):
            raise click.UsageError(f"--keep {keep_dir}: the directory is not empty")
        keep_dir.mkdir(parents=True, exist_ok=True)
        report = run_demo(keep_dir, seed)
        digest_path = keep_dir / "digest.html"
    else:
        digest_path = Path(tempfile.gettempdir()) / "triage-demo-digest.html"
        with tempfile.TemporaryDirectory(prefix="triage-demo-") as tmp:
            report = run_demo(Path(tmp), seed)
            shutil.copyfile(Path(tmp) / "digest.html", digest_path)
    holdout = report.train.scores.get("holdout") or {}
    click.echo(
        f"Sample buyer mailbox: {report.history} messages already filed, "
        f"{report.partners} trusted partners."
    )
    click.echo(
        f"Trained on {report.train.messages} messages"
        + (f" (holdout accuracy {holdout['accuracy']:.1%})" if holdout else "")
        + "."
    )
    click.echo(
        f"A new week arrived: {report.new_week} messages. Filed {report.run.moved}; "
        f"the rest stay in the inbox."
    )
    click.echo("")
    click.echo(f"  {'where it went':<40} {'messages':>8} {'right':>6}")
    for where, (count, right) in report.by_destination.items():
        click.echo(f"  {where:<40} {count:>8} {right:>6}")
    click.echo("")
    click.echo(
        f"Accuracy on the new week: {report.accuracy:.1%} "
        f"({report.correct} of {report.new_week}); partner mail sent to the generic "
        f"bucket: {report.partner_to_generic}."
    )
    click.echo("")
    click.echo(f"The buyer moved {len(report.moves)} messages by hand:")
    for move in report.moves:
        click.echo(f"  {move.subject[:58]!r} ({move.sender})")
        click.echo(f"      {move.before} -> {move.after}: {move.why}")
    corrections = report.learnt.get("correction", 0)
    click.echo(
        f"Corrections learned: {corrections}; from now on these senders' mail follows the "
        "buyer's moves."
    )
    if report.retrain is not None:
        r = report.retrain
        score = "" if r.new_score is None else f", holdout accuracy {r.new_score:.1%}"
        verdict = "now in use" if r.promoted else "kept aside (scored worse)"
        click.echo(f"Retrained on {r.messages} messages{score}: {verdict}.")
    if report.digest is not None:
        d = report.digest.digest
        click.echo("")
        click.echo(f"Digest: {d.subject}")
        for flag in d.flags[:8]:
            click.echo(f"  [{flag.title}] {flag.name}: {flag.text}"[:110])
        click.echo(f"Digest HTML: {digest_path}")
    if keep_dir is not None:
        click.echo(
            f"Mailbox: {keep_dir / 'Mail'} (Maildir++); state and model: {keep_dir / 'state'}"
        )
    click.echo(f"Done in {report.seconds:.1f} s.")


@cli.group()
def model() -> None:
    """Trained model versions: list them, or go back to an earlier one."""


@model.command("list")
@_account_option
@pass_state
def model_list(state: State, account_name: str | None) -> None:
    """The saved model versions, newest first; the one in use is marked with *."""
    config = state.config()
    account = config.account(account_name)
    versions = engine.list_models(config, account)
    if not versions:
        click.echo(f"No model for {account.name} yet; run `triage train`.")
    for v in versions:
        accuracy = "-" if v.holdout_accuracy is None else f"{v.holdout_accuracy:.1%}"
        click.echo(
            f"{'*' if v.current else ' '} {v.path.stem}  trained {v.trained_at}  "
            f"{v.messages} messages  holdout {accuracy}"
        )


@model.command("rollback")
@click.argument("name", required=False)
@_account_option
@pass_state
def model_rollback(state: State, name: str | None, account_name: str | None) -> None:
    """Use an earlier model: NAME (from `triage model list`), or the one before the current."""
    config = state.config()
    account = config.account(account_name)
    path = engine.rollback(config, account, name)
    click.echo(f"{account.name} now uses {path.stem}.")


@cli.command()
@_account_option
@pass_state
def retrain(state: State, account_name: str | None) -> None:
    """Train again on the folders as last read plus your corrections and hand-filed mail
    (no mailbox reading); the new model is used unless it scores worse than the current one."""
    config = state.config()
    account = config.account(account_name)
    _print_retrain(engine.retrain(config, account))


cli.add_command(init)  # triage init: the config wizard (triage/wizard.py)


def main() -> None:
    """Entry point of the `triage` console script and `python -m triage`."""
    cli(prog_name="triage")
