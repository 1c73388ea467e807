"""anywidget widgets (one traitlets model per widget, one ES module each in ``js/src/``)."""

from lmwidgets.notebook.widgets.prompt_view import PromptView

__all__ = ["PromptView"]
