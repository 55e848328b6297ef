"""What every probing tool shares: a model field of its own, errors said in place, run / stop.

Each tool of the probing screen (:mod:`tui.screens.probe`) is one :class:`ProbeTool` widget in a
tab. The screen passes the app's model down (:meth:`ProbeTool.follow_app_model`) and calls
:meth:`ProbeTool.run` / :meth:`ProbeTool.stop` from its keys; the tool runs its engine calls in
its own exclusive worker, so a new request supersedes the old one.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Input, Static

from engine import LmscopeError, UnsupportedModelError
from tui.widgets.model_field import ModelField


def error_text(exc: Exception) -> str:
    """An engine error as one or two lines: message, then hint."""
    if isinstance(exc, LmscopeError):
        return exc.message + (f"\n{exc.hint}" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


def busy(verb: str, model: str) -> Content:
    """``loading MODEL…`` and the like, the model's name as plain text."""
    return Content.assemble((f"{verb} ", "dim"), model, ("…", "dim"))


class ProbeTool(Widget):
    """One probing tool: subclasses set :attr:`tool` (the prefix of their widgets' ids, e.g. the
    model input is ``#{tool}-model``) and :attr:`focus_id` (what takes the keyboard when the tool's
    tab opens), compose their widgets after :meth:`model_field`, and implement :meth:`run`."""

    DEFAULT_CSS = """
    ProbeTool {
        height: 1fr;
    }
    """
    tool: ClassVar[str] = ""
    focus_id: ClassVar[str] = ""

    def __init__(self, app_model: str, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._app_model = app_model

    def model_field(self) -> ModelField:
        """This tool's model field (yield it from ``compose``)."""
        return ModelField(self._app_model, input_id=f"{self.tool}-model", id=f"{self.tool}-model-field")

    @property
    def model(self) -> str:
        """The model named in this tool's field (the app's model when it is empty)."""
        return self.query_one(ModelField).model

    def follow_app_model(self, name: str) -> None:
        """The app's model changed: the field follows unless the user typed another."""
        self._app_model = name
        for field in self.query(ModelField):
            field.app_model = name

    def run(self) -> None:
        """Start the tool on what its inputs hold (Ctrl+R, Enter)."""
        raise NotImplementedError

    def stop(self) -> bool:
        """Stop what is running; returns whether there was something to stop."""
        return False

    @on(Input.Submitted)
    def _model_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == f"{self.tool}-model":
            event.stop()
            self.run()

    def report(self, target: Static, exc: Exception, unsupported: str) -> None:
        """Show an engine error in ``target``; only unexpected ones also raise a notification.

        A model of the wrong kind for a tool (``UnsupportedModelError``) is an ordinary outcome
        of trying models here, so it is said in place, led by ``unsupported``.
        """
        if isinstance(exc, UnsupportedModelError):
            target.update(Content.assemble((unsupported, "bold $warning"), error_text(exc)))
        else:
            target.update(Content.styled(error_text(exc), "$error"))
            self.app.show_error(exc)
