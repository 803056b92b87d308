"""The web UI and the Gradio front door: the registry, reports, monitoring and try-it pages.

``shipyard ui`` serves :func:`create_ui`; ``shipyard serve`` mounts :func:`ui_routes` under
``/ui`` beside the model's API; ``shipyard gradio NAME`` builds a Gradio app from the same
try-it form (:mod:`shipyard.ui.gradio_app`). See docs/ui.md.
"""

from shipyard.ui.app import UISettings, create_ui, ui_routes

__all__ = ["UISettings", "create_ui", "ui_routes"]
