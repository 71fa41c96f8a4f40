"""Files a run and an export are made of, read and written safely: checkpoints (per-engine
states, consolidated weights, trainer state), safetensors and pickle-free engine states,
the config record an export's weights are checked against, and the copies a
self-contained export bundles. Nothing here builds a model or trains one."""
