"""What an offboarding deleted (or, in a dry run, would delete): one row per kind of thing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mme_factory.naming import gate_evidence_prefix, manifest_key, version_record_key
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore
from tasks.deployment.offboard.customer_holdings import CustomerHoldings, ManifestState


@dataclass(frozen=True)
class ReportRow:
    what: str
    where: str
    count: int
    action: str  # deleted, unloaded, kept, replaced ... or "would ..." in a dry run
    items: list[str] = field(default_factory=list)


@dataclass
class OffboardingReport:
    customer: str
    dry_run: bool
    already_offboarded: bool
    highest_version: int
    offboarded_at: str | None
    rows: list[ReportRow]

    def summary(self) -> str:
        if self.already_offboarded:
            return (
                f"customer {self.customer} is already offboarded (at {self.offboarded_at}, "
                f"highest version v{self.highest_version}): nothing to delete"
            )
        verb = "would be offboarded (dry run, nothing deleted)" if self.dry_run else "offboarded"
        return f"customer {self.customer} {verb}; next version if onboarded again: " + (
            f"v{self.highest_version + 1}"
        )

    def table(self) -> list[dict[str, object]]:
        """The rows for a table artifact: one line per row, items joined."""
        return [
            {"what": r.what, "where": r.where, "count": r.count, "action": r.action}
            | {"items": ", ".join(r.items)}
            for r in self.rows
        ]

    def text(self) -> str:
        """The summary and the rows as aligned text, then each row's items, for the CLI."""
        header = ("what", "where", "count", "action")
        lines = [header, *((r.what, r.where, str(r.count), r.action) for r in self.rows)]
        widths = [max(len(line[column]) for line in lines) for column in range(3)]
        if not self.rows:
            return self.summary()
        out = [self.summary(), ""]
        for line in lines:
            cells = [cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)]
            out.append("  ".join([*cells, line[3]]))
        for row in self.rows:
            out += [f"  {row.what}: {item}" for item in row.items]
        return "\n".join(out)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def report_rows(
    holdings: CustomerHoldings, store: ArtifactStore, settings: Settings, dry_run: bool
) -> list[ReportRow]:
    """One row per endpoint, local endpoint, kind of file and registry key of the customer."""

    def done(action: str) -> str:
        return (
            {"deleted": "would delete", "unloaded": "would unload"}[action] if dry_run else action
        )

    rows = [
        ReportRow("TargetModels", endpoint, len(keys), done("deleted"), keys)
        for endpoint, keys in sorted(holdings.target_models.items())
    ]
    rows += [
        ReportRow("loaded models (local endpoint)", endpoint, len(keys), done("unloaded"), keys)
        for endpoint, keys in sorted(holdings.loaded.items())
    ]
    if holdings.run_dirs:
        where = str(settings.runs_dir / holdings.customer)
        names = [path.name for path in holdings.run_dirs]
        rows.append(ReportRow("run directories", where, len(names), done("deleted"), names))
    if holdings.reports:
        names = [path.name for path in holdings.reports]
        where = str(settings.reports_dir)
        rows.append(ReportRow("validation reports", where, len(names), done("deleted"), names))
    rows += [
        ReportRow("data (managed store)", location, len(keys), done("deleted"), sorted(keys))
        for location, keys in sorted(holdings.data.items())
    ]
    rows += [
        ReportRow("data (outside the managed store)", location, 0, "kept: not the pipeline's")
        for location in holdings.data_kept
    ]
    if holdings.gate_evidence:
        rows.append(
            ReportRow(
                "gate evidence",
                store.uri(gate_evidence_prefix(holdings.customer)),
                len(holdings.gate_evidence),
                done("deleted"),
                holdings.gate_evidence,
            )
        )
    if holdings.version_record:
        rows.append(
            ReportRow(
                "version record",
                store.uri(version_record_key(holdings.customer)),
                1,
                done("deleted"),
            )
        )
    if holdings.manifest != ManifestState.TOMBSTONE:
        before = {
            ManifestState.NONE: "no manifest",
            ManifestState.UNREADABLE: "unreadable manifest",
        }
        change = f"{before.get(holdings.manifest, 'manifest')} -> tombstone"
        change += f" (highest version v{holdings.highest_version})"
        rows.append(
            ReportRow(
                "manifest",
                store.uri(manifest_key(holdings.customer)),
                1,
                f"would replace: {change}" if dry_run else f"replaced: {change}",
            )
        )
    return rows
