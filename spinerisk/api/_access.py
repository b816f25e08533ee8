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

    def _line(self, item: Any) -> str | None:
        if isinstance(item, str):
            return item
        record = item if isinstance(item, logging.LogRecord) else self._record(item)
        try:
            return self.format(record)
        except Exception:
            self.handleError(record)
            return None

    def _record(self, fields: AccessFields) -> logging.LogRecord:
        record = logging.LogRecord(
            "spinerisk.api", logging.INFO, __file__, 0, access_line(fields), (), None
        )
        record.created = fields[0]  # the time of the request, not of the write
        record.msecs = (fields[0] % 1) * 1000
        return record

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()


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
