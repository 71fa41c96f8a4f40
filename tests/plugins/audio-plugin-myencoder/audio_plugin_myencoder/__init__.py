"""Example plugin: a custom frozen encoder for the RAE model family. Importing this package
does not import torch."""

__version__ = "0.1.0"
