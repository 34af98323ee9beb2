"""Tokenizers of the DrivingWorld world model: the VQ video tokenizer (``vq``) and the ego-pose tokenizer (``pose``).

``load_tokenizer(folder)`` loads a trained ``VQVideoTokenizer`` from a ``worldgen train`` output folder
(config.yaml + model.safetensors); ``worldgen tokenize`` (``export``) writes the token shards the GPT trains from.
"""
from worldgen.tokenizer.vq import VQConfig, VQVideoTokenizer, load_tokenizer

__all__ = ["VQConfig", "VQVideoTokenizer", "load_tokenizer"]
