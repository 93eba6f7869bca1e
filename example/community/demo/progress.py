"""A one-line progress bar on a terminal, a few plain lines elsewhere (logs, CI)."""

import time


class Progress:
    def __init__(self, out, label, total):
        self.out, self.label, self.total = out, label, max(total, 1)
        self.tty = out.isatty()
        self.started = time.monotonic()
        self._next_line = 0.0  # when not on a terminal: the next fraction worth a line
        self._last = ""

    def update(self, done, note=""):
        fraction = min(done / self.total, 1.0)
        bar = "#" * int(fraction * 30)
        line = f"{self.label:<12} [{bar:<30}] {done}/{self.total} {note}".rstrip()
        if self.tty:
            self.out.write("\r" + line.ljust(len(self._last)), ending="")
            self.out.flush()
        elif fraction >= self._next_line:
            self.out.write(line)
            self._next_line = fraction + 0.25
        self._last = line

    def finish(self, note=""):
        elapsed = time.monotonic() - self.started
        line = f"{self.label:<12} done in {elapsed:.1f}s {note}".rstrip()
        self.out.write(("\r" + line.ljust(len(self._last))) if self.tty else line)
