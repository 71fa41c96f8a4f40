"""``audio-core eval``: score a model on a folder of audio (reconstruction metrics, speech
metrics, codebook usage, bitrate, real-time factor, Fréchet audio distance), optionally
beside a classical codec (Opus) at the same bitrates; tables, JSON, CSV and plots."""
