"""Audio quality metrics: SI-SDR, multi-resolution mel distance, ... (torch, batched)."""
