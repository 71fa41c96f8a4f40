"""Running trained models on audio files: reconstruction, and its report (metrics, plots)."""
