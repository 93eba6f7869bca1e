"""A one-line progress bar on a terminal, a few plain lines elsewhere (logs, CI)."""

import time


class Progress:
    def __init__(self, out, label, total):
        self.out, self.label, self.total = out, label, max(total, 1)
        self.tty = out.isatty()
        self.started = time.monotonic()
        self._quarter = -1  # when not on a terminal: the last quarter (0 to 4) given a line
        self._last = ""

    def update(self, done, note=""):
        fraction = min(done / self.total, 1.0)
        bar = "#" * int(fraction * 30)
        line = f"{self.label:<12} [{bar:<30}] {done}/{self.total} {note}".rstrip()
        # A line at the first update, at each quarter and at the end (quarter 4): the last
        # line always shows the total.
        quarter = int(fraction * 4)
        if self.tty:
            self.out.write("\r" + line.ljust(len(self._last)), ending="")
            self.out.flush()
        elif quarter > self._quarter:
            self.out.write(line)
            self._quarter = quarter
        self._last = line

    def finish(self, note=""):
        elapsed = time.monotonic() - self.started
        line = f"{self.label:<12} done in {elapsed:.1f}s {note}".rstrip()
        self.out.write(("\r" + line.ljust(len(self._last))) if self.tty else line)
