"""Training engine on DeepSpeed: engines per optimizer role, checkpoints, EMA, export."""
