"""Keeping secret values out of logs, run records and error messages.

Every value resolved through the secrets backends is registered here; :meth:`SecretMasker.mask`
replaces each registered value with ``***`` in a string, and :meth:`SecretMasker.mask_data` in
every string of a JSON-like structure. The logging filter applies it to every record.
Values shorter than three characters cannot be masked without mangling text and are refused.

A remote that echoes a secret rarely echoes it verbatim, so each value is masked in every common
spelling (:func:`spellings`): lower and upper case, base64 (standard and URL-safe, with or without
padding, and at each of the three byte alignments, so ``user:<secret>`` in a Basic header is
caught), percent-encoding (``quote`` and ``quote_plus``), hex, JSON and ``repr`` escapes
(including ``\\/``). Pieces are masked too (:func:`fragments`): a long prefix or suffix of a value
anywhere (a value split across two fields, or cut short), and a shorter one where a word ends
(a prefix) or starts (a suffix). Callers that shorten a text mask it *before* cutting it.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 3
# A prefix or suffix of at least this many characters (and a third of the value) is masked
# anywhere; one of at least EDGE_FRAGMENT where it ends (a prefix) or starts (a suffix) a word: at
# the end or start of a text, or next to a character that is not a letter or digit.
FRAGMENT = 10
EDGE_FRAGMENT = 6
_WORD = "[0-9A-Za-z]"
_MAX_FRAGMENTS = 48  # per value and side: long values (keys, certificates) are cut in coarser steps


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that encode only ``raw``, at each of the three byte alignments."""
    out: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw + b"\0\0").decode()
        start = math.ceil(8 * shift / 6)  # first character whose bits all come from ``raw``
        end = (8 * (shift + len(raw))) // 6  # one past the last such character
        core = encoded[start:end]
        if len(core) >= 4:
            out.add(core)
            out.add(core.replace("+", "-").replace("/", "_"))
    return out


def spellings(value: str) -> set[str]:
    """``value`` as a remote, a library or a log line may spell it (see the module docstring)."""
    raw = value.encode()
    out = {value, value.lower(), value.upper()}
    for form in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        out.update({form, form.rstrip("=")})
    out.update(_base64_cores(raw))
    out.update({quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/")})
    out.update({raw.hex(), raw.hex().upper()})
    for ascii_only in (True, False):
        escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        out.update({escaped, escaped.replace("/", "\\/")})
    out.add(repr(value)[1:-1])
    return {s for s in out if len(s) >= MIN_LENGTH}


def _lengths(n: int, shortest: int) -> range:
    step = max(1, math.ceil((n - shortest) / _MAX_FRAGMENTS))
    return range(shortest, n, step)


def fragments(value: str) -> tuple[set[str], set[str], set[str], set[str]]:
    """Pieces of ``value``: (prefixes masked anywhere, suffixes masked anywhere, prefixes masked
    where a word ends, suffixes masked where a word starts)."""
    n = len(value)
    anywhere = _lengths(n, max(FRAGMENT, math.ceil(n / 3))) if n >= FRAGMENT + 4 else range(0)
    edge = _lengths(n, EDGE_FRAGMENT) if n >= 2 * EDGE_FRAGMENT else range(0)
    return (
        {value[:k] for k in anywhere},
        {value[n - k :] for k in anywhere},
        {value[:k] for k in edge},
        {value[n - k :] for k in edge},
    )


def _trie_pattern(words: set[str]) -> str:
    """One regular expression matching each word (longest first), as a radix trie: thousands of
    spellings and pieces cost one pass over the text, not one pass per alternative."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = True

    def emit(node: dict[str, Any]) -> str:
        branches = []
        for char in sorted(k for k in node if k):
            child, run = node[char], [char]
            while "" not in child and len(child) == 1:  # a chain without choices: one literal
                (nxt,) = child
                run.append(nxt)
                child = child[nxt]
            rest = emit(child) if any(child.keys() - {""}) else ""
            if rest and "" in child:
                rest = f"(?:{rest})?"
            branches.append(re.escape("".join(run)) + rest)
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    return emit(root) if root else ""


class SecretMasker:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._word_ends: re.Pattern[str] | None = None  # prefixes, where a word ends
        self._reversed: re.Pattern[str] | None = None  # suffixes, on the reversed text
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        if len(value) < MIN_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            self._compile()

    def _compile(self) -> None:
        whole: set[str] = set()
        ends: set[str] = set()
        reversed_any: set[str] = set()
        reversed_edge: set[str] = set()
        for value in self._values:
            whole |= spellings(value)
            prefixes, suffixes, prefix_edges, suffix_edges = fragments(value)
            whole |= prefixes
            ends |= prefix_edges
            reversed_any |= {p[::-1] for p in suffixes}
            reversed_edge |= {p[::-1] for p in suffix_edges}
        # Every pattern's alternatives share few first characters, so the regex engine can skip
        # through clean text: suffixes are matched as prefixes of the reversed text (one pattern
        # with all pieces in it, or a leading look-behind, made masking a clean line 10x slower).
        self._pattern = re.compile(_trie_pattern(whole))
        self._word_ends = re.compile(f"(?:{_trie_pattern(ends)})(?!{_WORD})") if ends else None
        parts = [_trie_pattern(reversed_any)] if reversed_any else []
        if reversed_edge:
            parts.append(f"(?:{_trie_pattern(reversed_edge)})(?!{_WORD})")
        self._reversed = re.compile("|".join(parts)) if parts else None

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        text = pattern.sub(MASK, text)
        if self._word_ends is not None:
            text = self._word_ends.sub(MASK, text)
        if self._reversed is not None:  # MASK reads the same both ways
            text = self._reversed.sub(MASK, text[::-1])[::-1]
        return text

    def cut(self, text: str, length: int) -> str:
        """``text`` masked, then shortened to ``length`` characters (never the other way round:
        a cut can leave a piece of a secret that no longer looks like it)."""
        return self.mask(text)[:length]

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
        return self._pattern is not None and self.mask(text) != text


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


class LibraryRequestLogFilter(SecretMaskingFilter):
    """For the loggers of HTTP libraries (httpx's ``HTTP Request: GET <url> ...`` INFO line): the
    URL's query and user info are dropped before the line is formatted, then the rest is masked.
    Attached to the library's logger itself, it applies whatever handlers a deployment configures."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_bare_url(a) if _looks_like_url(a) else a for a in record.args)
        return super().filter(record)


def _looks_like_url(value: Any) -> bool:
    return type(value).__name__ == "URL" or (isinstance(value, str) and "://" in value)


def _bare_url(value: Any) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(value))
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a URL after all: leave it to the masking
        return str(value)
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}" + ("?…" if parts.query else "")


def guard_library_loggers(*names: str) -> None:
    """Attach :class:`LibraryRequestLogFilter` to these loggers (once)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LibraryRequestLogFilter) for f in logger.filters):
            logger.addFilter(LibraryRequestLogFilter())
