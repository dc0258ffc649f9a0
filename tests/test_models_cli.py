"""`triage model list` and `triage model rollback`, and pruning to keep_models versions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from click.testing import CliRunner

from triage import engine, sample
from triage.cli import cli
from triage.config import load_config


def test_versions_list_rollback_and_prune(tmp_path: Path) -> None:
    buyer = sample.build(seed=4, weeks=6)
    sample.write_maildir(dataclasses.replace(buyer, new_week=()), tmp_path / "Mail")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[triage]\nstate_dir = "{tmp_path / "state"}"\n[run]\nkeep_models = 2\n'
        f'[[accounts]]\nname = "demo"\nbackend = "maildir"\npath = "{tmp_path / "Mail"}"\n'
        f'own_domains = ["{buyer.buyer.domain}"]\n'
    )
    config = load_config(path)
    account = config.account()
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(path), "model", "list"])
    assert result.exit_code == 0 and "run `triage train`" in result.output
    first = engine.train(config, account).path
    second = engine.train(config, account).path
    third = engine.train(config, account).path
    # keep_models = 2: the oldest is gone, the newest is in use.
    assert not first.exists() and second.exists() and third.exists()
    result = runner.invoke(cli, ["--config", str(path), "model", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"* {third.stem}") and lines[1].startswith(f"  {second.stem}")
    assert "holdout" in lines[0]

    result = runner.invoke(cli, ["--config", str(path), "model", "rollback"])
    assert result.exit_code == 0, result.output
    assert engine.current_model_path(config, account) == second
    result = runner.invoke(cli, ["--config", str(path), "model", "rollback"])
    assert result.exit_code == 4 and "no model older" in result.output
    result = runner.invoke(cli, ["--config", str(path), "model", "rollback", third.stem])
    assert result.exit_code == 0
    assert engine.current_model_path(config, account) == third
    result = runner.invoke(cli, ["--config", str(path), "model", "rollback", "model-nope"])
    assert result.exit_code == 4 and "model list" in result.output

    # A tampered version is refused, and the current model stays as it was.
    data = bytearray(second.read_bytes())
    data[len(data) // 2] ^= 0xFF
    second.write_bytes(bytes(data))
    result = runner.invoke(cli, ["--config", str(path), "model", "rollback", second.stem])
    assert result.exit_code == 4 and "triage train" in result.output
    assert engine.current_model_path(config, account) == third
