"""``audio-core ui``: a local web page to listen to models (Gradio, optional extra ``ui``)."""
