"""Sharded datasets: tar shards in the WebDataset layout, read locally or from any fsspec URL.

- :mod:`.format`: the on-disk layout (``index.json``, tar shards, per-shard member indexes)
  and the writer of one shard.
- :mod:`.source`: resolving ``params.urls`` and reading byte ranges of shards (fsspec).
- :mod:`.plan`: the order of an epoch's samples (shard order, rank split, shuffle buffer),
  computed from sample counts alone, which is what makes resume exact.
- :mod:`.dataset`: ``core.shards``, the dataset and its resumable sampler.
"""
