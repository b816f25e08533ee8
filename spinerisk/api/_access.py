"""The access log's line and its cheap writer (``spinerisk serve``).

A request hands a tuple of plain values (time, client, request line, status, records,
milliseconds) to a queue; a background thread turns the queued tuples into lines with the
handler's formatter and writes them in batches, a few times a second. The request pays for
one ``SimpleQueue.put``, not for a log record, the logging module's locks, the formatter,
a write and a thread wake-up each. Under any other logging set-up the same line goes
through ``logging`` as an ordinary record (:func:`writer_of` says which).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["AccessLogHandler", "access_line", "utf8_text", "writer_of"]

#: What a request hands over: (unix time, client (host, port) or None, method, path,
#: HTTP version, status, records scored, milliseconds).
AccessFields = tuple[float, Any, str, str, str, int, int, float]


def utf8_text(value: str) -> str:
    """Text safe to encode as UTF-8: a lone surrogate (``\\ud800``, which JSON can
    escape but UTF-8 cannot carry) is written as its escape."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def access_line(fields: AccessFields) -> str:
    """The access line of a request: client, request line (path without its query
    string), status, records and milliseconds; never a body value."""
    _, client, method, path, version, status, records, ms = fields
    peer = f"{client[0]}:{client[1]}" if client else "-"
    request = f"{method} {utf8_text(path)} HTTP/{version}"
    return f'{peer} - "{request}" {status} records={records} ms={ms:.2f}'


class AccessLogHandler(logging.Handler):
    """A handler that writes its records to a stream from a background thread, in batches.

    Ordinary records (``emit``) and access tuples (:meth:`access`) share one queue, so
    lines keep their order. Records are formatted in the writer thread (their arguments
    are counts, codes and names), except those with a traceback, which are formatted at
    once. Everything queued is written by :meth:`flush`, which ``logging`` calls at exit.

    Parameters
    ----------
    stream : text stream
        Where lines go (``spinerisk serve``: stderr).
    interval : float, default=0.1
        Seconds between the writer's batches.
    """

    def __init__(self, stream: TextIO, interval: float = 0.1) -> None:
        super().__init__()
        self.stream = stream
        self.interval = interval
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._template: tuple[str, str] | None = None
        self._template_known = False
        self._writer = threading.Thread(target=self._run, name="spinerisk-access-log", daemon=True)
        self._writer.start()

    def access(self, fields: AccessFields) -> None:
        """Queue a request's access line (formatted and written later)."""
        self._queue.put(fields)

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.stack_info:  # tracebacks hold frames: render now
            try:
                self._queue.put(self.format(record))
            except Exception:
                self.handleError(record)
            return
        self._queue.put(record)

    def flush(self) -> None:
        """Write everything queued so far."""
        with self._write_lock:
            lines = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                line = self._line(item)
                if line is not None:
                    lines.append(line)
            if lines:
                try:
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
                except Exception:  # a closed or full stream: logging's usual report
                    self.handleError(logging.makeLogRecord({"msg": "access log write"}))

    def close(self) -> None:
        self._stop.set()
        self.flush()
        super().close()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802
        super().setFormatter(fmt)
        self._template_known = False  # worked out again when next used

    def _line(self, item: Any) -> str | None:
        if isinstance(item, str):
            return item
        if not isinstance(item, logging.LogRecord):
            if not self._template_known:
                self._template, self._template_known = self._find_template(), True
            if self._template is not None:
                prefix, suffix = self._template
                return prefix + access_line(item) + suffix
        record = item if isinstance(item, logging.LogRecord) else self._record(item)
        try:
            return self.format(record)
        except Exception:
            self.handleError(record)
            return None

    def _find_template(self) -> tuple[str, str] | None:
        """(prefix, suffix) such that an access record formats as prefix + line + suffix,
        when the formatter's output depends on nothing else that varies (no time field)
        and keeps the text of the message as it is; otherwise None (each line is then
        formatted as a record)."""
        formatter = self.formatter or logging.Formatter()
        fmt = str(getattr(formatter, "_fmt", None) or "")
        if formatter.usesTime() or any(k in fmt for k in ("created", "msecs")):
            return None
        try:
            # different times too: a formatter showing one without a format field is seen
            probes = [
                self.format(self._record((1e9 + 90061.5 * i, None, "", "", "", 0, 0, 0.0), m))
                for i, m in enumerate(_PROBES)
            ]
        except Exception:
            return None
        parts = probes[0].split(_PROBES[0])
        if len(parts) != 2:
            return None
        prefix, suffix = parts
        if any(p != prefix + m + suffix for p, m in zip(probes, _PROBES, strict=True)):
            return None
        return prefix, suffix

    def _record(self, fields: AccessFields, message: str | None = None) -> logging.LogRecord:
        text = access_line(fields) if message is None else message
        record = logging.LogRecord("spinerisk.api", logging.INFO, __file__, 0, text, (), None)
        record.created = fields[0]  # the time of the request, not of the write
        record.msecs = (fields[0] % 1) * 1000
        return record

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()


#: Messages that show whether a formatter keeps a message's text as it is.
_PROBES = ("\x00probe\x00", '\x00 - "POST /x?a=%s&b={} HTTP/1.1" 200\\n \u00e9\x00')


def writer_of(logger: logging.Logger) -> Callable[[AccessFields], None] | None:
    """The fast hand-over of ``logger``'s access lines, when an :class:`AccessLogHandler`
    is all that would see them (its only handler, nothing filtering, not propagated);
    otherwise None: the line goes through ``logging`` as a record."""
    handlers = logger.handlers
    if len(handlers) != 1 or logger.propagate or logger.filters:
        return None
    handler = handlers[0]
    if type(handler) is not AccessLogHandler or handler.filters:
        return None
    if handler.level > logging.INFO:
        return None
    return handler.access
