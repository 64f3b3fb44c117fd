"""Reading and validating a customer's data."""

from tasks.data.training_data import CustomerDataset, load_dataset, read_golden_set
from tasks.data.validate_data import ValidationSummary, validate_data, validate_data_task

__all__ = [
    "CustomerDataset",
    "ValidationSummary",
    "load_dataset",
    "read_golden_set",
    "validate_data",
    "validate_data_task",
]
