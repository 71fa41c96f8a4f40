"""Launching training so that a preemption ends in a complete checkpoint.

:mod:`audio_core.launch.supervisor` runs a launcher command (``deepspeed``, ``torchrun``,
``python``) and forwards stop signals to the training processes past the launchers;
:mod:`audio_core.launch.status` is how each training process reports itself to it.
Importing this package does not import torch.
"""
