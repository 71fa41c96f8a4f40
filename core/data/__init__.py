"""Datasets, samplers and loaders. Datasets are registered as ``core.*`` components."""
