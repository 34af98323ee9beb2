"""worldgen: world models and autoregressive video generation."""
__version__ = "0.1.0"
