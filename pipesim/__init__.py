"""pipesim: place DNN operator graphs on device pipelines and simulate them."""

__version__ = "0.1.0"
