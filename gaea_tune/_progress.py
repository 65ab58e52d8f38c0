"""Progress of long work (``search``, ``tabular``, ``calibrate``, ``compare``): a tqdm bar when the
output stream is a terminal, plain lines when it is not (a log file, CI, a pipe).

Notebook-safe: nothing global changes (no logging or warning filters, no environment
variables); tqdm is imported only when a bar is drawn.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """``total`` units of work (None: unknown), reported with :meth:`set` / :meth:`advance`.

    On a terminal: a tqdm bar on ``stream``. Otherwise: one plain line per update (at most one
    every ``min_interval`` seconds, and always the last), or none with ``plain_updates=False``
    for callers that print their own lines through :meth:`write`. Calling the object writes a
    text block (above the bar on a terminal), so it can stand where a ``print``-like
    ``progress`` callback is expected.
    """

    def __init__(
        self,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        stream: TextIO | None = None,
        enabled: bool = True,
        plain_updates: bool = True,
        min_interval: float = 0.0,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.desc, self.unit = total, desc, unit
        self.enabled, self.plain_updates, self.min_interval = enabled, plain_updates, min_interval
        self.n: float = 0
        self._last_line = 0.0
        self.bar: Any = None
        if enabled and is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream,
                            dynamic_ncols=True)  # fmt: skip

    def set(self, n: float, text: str | None = None) -> None:
        """The work done so far is ``n`` units."""
        self.advance(n - self.n, text)

    def advance(self, n: float = 1, text: str | None = None) -> None:
        """``n`` more units done; ``text``: a short status beside the count."""
        self.n += n
        if not self.enabled:
            return
        if self.bar is not None:
            if text is not None:
                self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(n)
            return
        now = time.monotonic()
        last = self.total is not None and self.n >= self.total
        if self.plain_updates and (last or now - self._last_line >= self.min_interval):
            self._last_line = now
            print(self.line(text), file=self.stream, flush=True)

    def line(self, text: str | None = None) -> str:
        """The plain line of the current state."""
        count = f"{self.n:g}" if self.total is None else f"{self.n:g}/{self.total:g}"
        share = f" ({100.0 * self.n / self.total:.0f}%)" if self.total else ""
        return f"{self.desc}: {count} {self.unit}{share}" + (f"  {text}" if text else "")

    def write(self, text: str) -> None:
        """A text block: above the bar on a terminal, else as it is."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    __call__ = write

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
