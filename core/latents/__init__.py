"""Latents as data: pre-encoding datasets with a frozen model, shards, statistics."""
