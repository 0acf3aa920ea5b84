"""Training progress: a tqdm bar when tqdm is installed (tqdm.auto: a widget in notebooks, a bar
in terminals), else a line on stderr redrawn in place in a terminal, one line per epoch otherwise.
The native code calls started / step / message / finished; close() ends it in any case."""

import sys
import time


class Reporter:
    """Receives the library's progress events (see towers::progress::Event)."""

    def __init__(self):
        self._bar = None

    def started(self, what, total):
        self.close()
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._bar = _Line(what, total)
        else:
            self._bar = tqdm(total=total, desc=what, unit="batch", leave=False, dynamic_ncols=True)

    def step(self, n):
        if self._bar is not None and n:
            self._bar.update(n)

    def message(self, text):
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def finished(self):
        self.close()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _Line:
    """The bar without tqdm: `training [=====>    ] 120/250 epoch 4 loss 1234.5 (3.1 s)`."""

    def __init__(self, what, total):
        self.what, self.total, self.n, self.text = what, max(int(total), 1), 0, ""
        self.start = time.monotonic()
        self.tty = getattr(sys.stderr, "isatty", lambda: False)()
        self._draw()

    def update(self, n):
        self.n += n
        if self.tty:
            self._draw()

    def set_postfix_str(self, text):
        self.text = text
        if self.tty:
            self._draw()
        else:
            print(f"{self.what}: {text}", file=sys.stderr, flush=True)

    def _draw(self):
        if not self.tty:
            return
        done = int(30 * min(self.n, self.total) / self.total)
        bar = "=" * done + (">" if done < 30 else "") + " " * max(29 - done, 0)
        line = f"{self.what} [{bar}] {self.n}/{self.total} {self.text} ({time.monotonic() - self.start:.1f} s)"
        sys.stderr.write("\r" + line[:150])
        sys.stderr.flush()

    def close(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
