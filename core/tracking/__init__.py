"""Run tracking: console progress, JSONL, TensorBoard and MLflow behind one interface."""
