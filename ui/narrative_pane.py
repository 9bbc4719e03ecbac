"""The panel's narrative pane: the track's story, then each section with its events."""

from __future__ import annotations

import html
from typing import Any

from PyQt6.QtWidgets import QTextBrowser, QWidget

from daw_bridge.clock import clock


class NarrativePane(QTextBrowser):
    """Shows a ``TrackNarrative.to_dict()``: the prose, then every section's span, key, text
    and the events said at its start with their confidences."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Narrate the track to read its story here.")

    def show_narrative(self, narrative: dict[str, Any] | None) -> None:
        """Show ``narrative`` (clear the pane for None)."""
        if not narrative:
            self.clear()
            return
        parts = [f"<p style='font-size:14px'>{_escape(narrative.get('text', ''))}</p><hr>"]
        for s in narrative.get("sections", []):
            events = "".join(
                f"<br><i>{_escape(e.get('text', ''))}</i> ({float(e.get('confidence', 0)):.2f})"
                for e in s.get("events", [])
            )
            parts.append(
                f"<p><b>{clock(s['start_s'])}–{clock(s['end_s'])}</b>"
                f" {_escape(s.get('key') or '')}<br>{_escape(s.get('text', ''))}{events}</p>"
            )
        self.setHtml("".join(parts))

    def show_failure(self, message: str) -> None:
        """Say that narrating failed, and why."""
        self.setHtml(f"<p style='color:#c0392b'>⚠ narrative failed: {_escape(message)}</p>")


def _escape(text: str) -> str:
    return html.escape(text, quote=False)
