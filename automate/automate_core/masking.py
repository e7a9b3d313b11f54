"""Keeping secret values out of logs, run records and error messages.

Every value resolved through the secrets backends is registered here; :meth:`SecretMasker.mask`
replaces each registered value with ``***`` in a string, and :meth:`SecretMasker.mask_data` in
every string of a JSON-like structure. The logging filter applies it to every record.
Values shorter than three characters cannot be masked without mangling text and are refused.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

MASK = "***"
MIN_LENGTH = 3


class SecretMasker:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        if len(value) < MIN_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            # longest first, so a secret that contains another is masked whole
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def mask_data(self, data: Any) -> Any:
        if self._pattern is None:
            return data
        if isinstance(data, str):
            return self.mask(data)
        if isinstance(data, dict):
            return {self.mask_data(k): self.mask_data(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.mask_data(v) for v in data]
        return data

    def contains_secret(self, text: str) -> bool:
        return self._pattern is not None and bool(self._pattern.search(text))


masker = SecretMasker()


class SecretMaskingFilter(logging.Filter):
    """Masks registered secret values in every log record that passes through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if masker._pattern is None:
            return True
        message = record.getMessage()
        masked = masker.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = masker.mask(text)
            record.exc_info = None
        return True
