"""mme-factory: per-customer fine-tuned models on shared SageMaker multi-model endpoints."""
