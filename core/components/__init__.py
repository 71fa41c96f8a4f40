"""Small built-in components (registered as ``core.*``): baselines and test fixtures.

Model families live in plugins; these exist so every task can run with audio-core alone.
"""
