"""Publishing a customer's models: version, register on the MME, smoke-test, promote, roll back."""

from tasks.deployment.publish.promote import promote, promote_task, rollback
from tasks.deployment.publish.publish_models import (
    assign_version_task,
    export_dir_for,
    keep_gate_evidence,
    manifest_entries,
    report_smoke_results,
    smoke_inputs_for,
    withdraw_uploads,
)
from tasks.deployment.publish.register_mme import Registration, register_mme, register_mme_task
from tasks.deployment.publish.smoke_inference import (
    SmokeResult,
    smoke_inference,
    smoke_inference_task,
)
from tasks.deployment.publish.training_fingerprint import (
    TrainingFingerprint,
    training_fingerprints,
    training_fingerprints_task,
)
from tasks.deployment.publish.withdraw_unpromoted import (
    withdraw_unpromoted,
    withdraw_unpromoted_task,
)

__all__ = [
    "Registration",
    "SmokeResult",
    "TrainingFingerprint",
    "assign_version_task",
    "export_dir_for",
    "keep_gate_evidence",
    "manifest_entries",
    "promote",
    "promote_task",
    "register_mme",
    "register_mme_task",
    "report_smoke_results",
    "rollback",
    "smoke_inference",
    "smoke_inference_task",
    "smoke_inputs_for",
    "training_fingerprints",
    "training_fingerprints_task",
    "withdraw_unpromoted",
    "withdraw_unpromoted_task",
    "withdraw_uploads",
]
