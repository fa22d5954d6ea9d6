"""Keeps secrets (the consumer key, access tokens) out of log records and error texts.

A v1 access token travels in the URL path, and urllib3 logs every retry with that path. Rather
than trust every library to stay quiet, the process keeps one registry of secret strings and
scrubs them wherever text leaves the client: log records (through `RedactingFilter`), exception
messages, and anything else passed through `redact`.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote, quote_plus

REDACTED = "***"

# Loggers whose records can carry a request URL. A filter on a logger only sees records created
# by that very logger, not by its children, so the children that exist are listed too.
URL_LOGGING_PREFIXES = ("urllib3", "requests")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(secret: str | None) -> None:
    """Add a secret to the process-wide registry; `redact` replaces it from now on.

    The percent-encoded forms are registered too, because a secret in a query string reaches
    the logs encoded.
    """
    global _pattern
    if not secret:
        return
    variants = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    with _lock:
        if variants <= _secrets:
            return
        _secrets.update(variants)
        # Longest first, so a secret that contains another one is replaced whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: object) -> str:
    """Return `text` as a string with every registered secret replaced by `***`."""
    value = text if isinstance(text, str) else str(text)
    pattern = _pattern
    if pattern is None:
        return value
    return pattern.sub(REDACTED, value)


def contains_secret(text: str) -> bool:
    """Whether `text` holds any registered secret."""
    pattern = _pattern
    return pattern is not None and pattern.search(text) is not None


class RedactingFilter(logging.Filter):
    """Rewrites a log record in place when its message, traceback or stack holds a secret.

    The record is never dropped: the operator still sees that a retry happened, with `***`
    where the token was. Records without secrets are left untouched, arguments included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        self._scrub_message(record)
        self._scrub_exception(record)
        if record.stack_info and contains_secret(record.stack_info):
            record.stack_info = redact(record.stack_info)
        return True

    @staticmethod
    def _scrub_message(record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            # A malformed record: keep only the template, which a library wrote, not a secret.
            message = str(record.msg)
        if contains_secret(message):
            record.msg = redact(message)
            record.args = None
            record.message = record.msg

    @staticmethod
    def _scrub_exception(record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if contains_secret(text):
                # Handlers render exc_text when exc_info is gone; the live exception, whose
                # arguments hold the secret, is not handed on.
                record.exc_text = redact(text)
                record.exc_info = None
        if record.exc_text and contains_secret(record.exc_text):
            record.exc_text = redact(record.exc_text)


_FILTER = RedactingFilter()


def install_redaction_filter(*loggers: logging.Logger) -> RedactingFilter:
    """Attach the shared `RedactingFilter` where URLs get logged; safe to call many times.

    It goes on every handler of the root logger (records from any library pass through them),
    on the urllib3 and requests loggers and their children, and on `loggers`, so that a handler
    added later (a test's capture, an orchestrator's log manager) receives records already
    scrubbed. Returns the filter.
    """
    targets: list[logging.Logger | logging.Handler] = list(logging.getLogger().handlers)
    manager = logging.Logger.manager
    for name in list(manager.loggerDict):
        if name.split(".")[0] in URL_LOGGING_PREFIXES:
            logger = manager.loggerDict[name]
            if isinstance(logger, logging.Logger):
                targets.append(logger)
    targets.extend(logging.getLogger(name) for name in URL_LOGGING_PREFIXES)
    targets.extend(loggers)
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
    return _FILTER
