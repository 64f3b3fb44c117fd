"""Publishing on the multi-model endpoints: version, register, smoke-test, promote, warm up."""

from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.offboard_customer import offboard_customer, offboard_customer_task
from tasks.deployment.promote import promote, promote_task
from tasks.deployment.publish_models import (
    assign_version_task,
    export_dir_for,
    manifest_entries,
    report_smoke_results,
    smoke_inputs_for,
    withdraw_uploads,
)
from tasks.deployment.register_mme import Registration, register_mme, register_mme_task
from tasks.deployment.smoke_inference import SmokeResult, smoke_inference, smoke_inference_task
from tasks.deployment.training_fingerprint import (
    TrainingFingerprint,
    training_fingerprints,
    training_fingerprints_task,
)
from tasks.deployment.warmup_models import WarmupResult, warm_models, warm_models_task
from tasks.deployment.withdraw_unpromoted import withdraw_unpromoted, withdraw_unpromoted_task

__all__ = [
    "Registration",
    "SmokeResult",
    "TrainingFingerprint",
    "WarmupResult",
    "assign_version_task",
    "customer_lock",
    "export_dir_for",
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
