"""The worldgen Gradio demo (app.py) and its inference pipelines (pipelines.py)."""
