"""Fine-tuning, evaluation against a baseline, the quality gate and the TorchScript export."""

from tasks.training.quality_gate import QualityGateRejected
from tasks.training.run_directory import RunDirectory
from tasks.training.train_customer import PLAIN_STEPS, TrainingRun, train_customer
from tasks.training.trained_model import TrainedModel
from tasks.training.training_record import TrainingFailed
from tasks.training.training_tasks import PREFECT_STEPS

__all__ = [
    "PLAIN_STEPS",
    "PREFECT_STEPS",
    "QualityGateRejected",
    "RunDirectory",
    "TrainedModel",
    "TrainingFailed",
    "TrainingRun",
    "train_customer",
]
