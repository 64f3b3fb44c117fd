"""Publishing on the multi-model endpoints, by stage: `publish` (version, register, smoke-test,
promote), `warmup` (keep what fits warm) and `offboard` (remove a customer); the customer lock and
version numbers are shared by all three."""

from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.offboard import (
    discard_if_offboarded,
    offboard_customer,
    offboard_customer_task,
)
from tasks.deployment.publish import (
    Registration,
    SmokeResult,
    TrainingFingerprint,
    assign_version_task,
    export_dir_for,
    keep_gate_evidence,
    manifest_entries,
    promote,
    promote_task,
    register_mme,
    register_mme_task,
    report_smoke_results,
    smoke_inference,
    smoke_inference_task,
    smoke_inputs_for,
    training_fingerprints,
    training_fingerprints_task,
    withdraw_unpromoted,
    withdraw_unpromoted_task,
    withdraw_uploads,
)
from tasks.deployment.warmup import WarmupResult, WarmupStatus, warm_models, warm_models_task

__all__ = [
    "Registration",
    "SmokeResult",
    "TrainingFingerprint",
    "WarmupResult",
    "WarmupStatus",
    "assign_version_task",
    "customer_lock",
    "discard_if_offboarded",
    "export_dir_for",
    "keep_gate_evidence",
    "manifest_entries",
    "offboard_customer",
    "offboard_customer_task",
    "promote",
    "promote_task",
    "register_mme",
    "register_mme_task",
    "report_smoke_results",
    "smoke_inference",
    "smoke_inference_task",
    "smoke_inputs_for",
    "training_fingerprints",
    "training_fingerprints_task",
    "warm_models",
    "warm_models_task",
    "withdraw_unpromoted",
    "withdraw_unpromoted_task",
    "withdraw_uploads",
]
