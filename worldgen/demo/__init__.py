"""The worldgen Gradio demo: ``app.py`` (the page and its request handlers), ``pipelines.py`` (the device pool,
input limits, upload checks and plots; the model work is ``worldgen.pipelines``), ``launch.py`` (``worldgen demo``),
``bench.py`` (driving pipeline speed), ``screenshot.py`` (headless browser), ``examples/`` (shipped context clips,
installed as package data). Entry-point layer: nothing in the library imports it."""
