"""The terminal progress bar every command draws (rich), one look for all of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


def progress_bar(console: Console, *, disable: bool = False) -> Progress:
    """A transient bar: description, bar, done/total and elapsed time, drawn on ``console``.

    Args:
        console: where it is drawn (the commands draw on stderr).
        disable: draw nothing (e.g. a single file on a non-terminal).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disable,
    )
