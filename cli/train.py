"""`mme-factory train --customer ID --data PATH_OR_S3_URI [--kinds ...] [--test-data FILE]`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cli.arguments import add_kinds_argument
from mme_factory.model_kinds import describe
from mme_factory.records import GateDecision, KindMetadata, KindOutcome
from mme_factory.settings import load_settings

if TYPE_CHECKING:
    from tasks.training.training_record import TrainingRun


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="validate, fine-tune, evaluate, gate and export a customer's models"
    )
    parser.add_argument("--customer", required=True, help="customer id, e.g. acme")
    parser.add_argument("--data", required=True, help="directory or s3://bucket/prefix")
    add_kinds_argument(parser, "every kind the data supports")
    parser.add_argument("--test-data", help="a held-apart text,intent CSV (golden set)")
    parser.add_argument("--metrics-json", type=Path, help="also write every metric to this file")
    parser.add_argument("--json", action="store_true", help="print the run record as JSON")
    parser.set_defaults(handler=run)


@contextmanager
def progress_on_stderr() -> Iterator[None]:
    """Training's progress lines (step, loss, time left) on stderr while the command runs.

    On the project's own logger, not the root one: importing Prefect gives the root logger a
    handler at WARNING (so logging.basicConfig would do nothing), and the libraries' INFO
    chatter stays out.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    project = logging.getLogger("mme_factory")
    saved = project.level, project.propagate
    project.addHandler(handler)
    project.setLevel(logging.INFO)
    project.propagate = False
    try:
        yield
    finally:
        project.removeHandler(handler)
        project.setLevel(saved[0])
        project.propagate = saved[1]


def _row(kind: str, outcome: KindOutcome) -> str:
    description = describe(kind)
    metric, baseline = description.summary_metric, description.baseline
    metrics = outcome.metrics or {}
    timings = outcome.timings or {}
    before = metrics.get(baseline, {}).get(metric)
    after = metrics.get("fine_tuned", {}).get(metric)
    return (
        f"{kind:<13} {metric:<19} {_figure(before, 8)} {_figure(after, 10)}  "
        f"{outcome.status:<13} {_served(outcome):<10} {timings['total_s']:>7.1f} s "
        f"{timings['peak_rss_mb']:>8.0f} MB"
    )


def _served(outcome: KindOutcome) -> str:
    """What serves the kind after this run: a model of the run, or the live version kept."""
    gate = outcome.gate
    if outcome.served is not None:
        return outcome.served
    if gate is not None and gate.decision == GateDecision.CHAMPION:
        return f"v{gate.champion_version} (live)"
    return "-"


def _figure(value: object, width: int) -> str:
    return f"{value:>{width}.3f}" if isinstance(value, int | float) else f"{'-':>{width}}"


def _gate_notes(result: TrainingRun) -> list[str]:
    """What the gate decided for each kind that did not simply serve its fine-tuned model."""
    notes = []
    for kind, outcome in result.outcomes.items():
        gate = outcome.gate
        if gate is not None and gate.decision in (GateDecision.BASELINE, GateDecision.CHAMPION):
            notes.append(f"note: {kind}: {gate.reason}")
    return notes


def _problems(result: TrainingRun) -> list[str]:
    lines = []
    for kind in result.rejected:
        gate = result.outcomes[kind].gate
        reason = gate.reason if gate is not None else "no gate verdict recorded"
        lines.append(f"error: {kind} rejected by the quality gate: {reason}")
    for kind in result.failed:
        failure = result.outcomes[kind].failure
        stage, error, message = (
            (failure.stage, failure.error, failure.message)
            if failure is not None
            else ("an unknown stage", "", "")
        )
        lines.append(
            f"error: {kind} failed at {stage}: {error}: {message}; its metrics and timings so "
            f"far are in {KindMetadata.path_in(result.run.kind_dir(kind))}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    from tasks.deployment.publish import training_fingerprints
    from tasks.training.train_customer import PLAIN_STEPS, train_customer
    from tasks.training.training_record import TrainingFailed, TrainingRun

    settings = load_settings(args.settings)
    try:
        with progress_on_stderr():
            # What a tie with the customer's live versions is judged by (data, settings, code).
            fingerprints = training_fingerprints(args.data, settings, args.kinds)
            result = train_customer(
                args.customer,
                args.data,
                settings,
                args.kinds,
                args.test_data,
                PLAIN_STEPS,
                fingerprints,
            )
    except TrainingFailed as error:
        # What the run learnt before the failure is in its run directory: show it.
        result = TrainingRun.open(Path(error.run_dir))
    record = {**result.record.to_dict(), "run_dir": str(result.run.path)}
    if args.metrics_json:
        args.metrics_json.write_text(
            json.dumps(
                {kind: o.metrics for kind, o in result.outcomes.items() if o.metrics is not None},
                indent=2,
            )
            + "\n"
        )
    if args.json:
        print(json.dumps(record, indent=2, default=str))
    else:
        print(f"run {result.run.run_id} for {result.run.customer}: {result.run.path}")
        print(
            f"{'kind':<13} {'metric':<19} {'baseline':>8} {'fine-tuned':>10}  {'status':<13} "
            f"{'served':<10} "
            f"{'time':>9} {'peak RSS':>11}"
        )
        for kind, outcome in result.outcomes.items():
            print(_row(kind, outcome))
    problems = _problems(result)
    for line in _gate_notes(result) + problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0
