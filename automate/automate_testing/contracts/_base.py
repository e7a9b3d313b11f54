"""Mechanics shared by the three contract suites.

* A suite base is never collected (``__test__ = False``); a subclass that names its plugin class
  is (``__init_subclass__`` turns ``__test__`` back on, so the pytest trap of an inherited
  ``__test__ = False`` hiding the author's own tests cannot happen). Under ``unittest``, a base
  imported into a test module skips itself in ``setUpClass``.
* Checks are the methods named ``test_contract_*``. The suite passes every plugin that keeps the
  public guide's contract; a check that asks for more than the guide says (a non-retryable error
  for an unknown action, ``ConnectorConfigError`` for a refused configuration, ...) is *optional*:
  it is named ``test_contract_optional_<name>`` and runs only when the test class opts in with
  ``contract_opt_in = {"<name>", ...}`` (until then it is skipped, saying how to opt in). A check
  whose data the test class did not declare (``valid_config``, ``secrets``, ...) is skipped too,
  saying what to declare. Opting out of a check takes a reason:
  ``contract_skips = {"test_contract_x": "why"}``. An empty reason fails the check instead of
  skipping it, and so does overriding a check without listing it there (that would silently
  disable it).
* :func:`no_io` blocks sockets and database queries, to prove a plugin is built without I/O and
  to make "the remote is down" failures happen offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
import unittest
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, ClassVar

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: The prefix of the optional checks' names.
OPTIONAL = "test_contract_optional_"


class NetworkBlocked(OSError):
    """The contract suite blocks network access here (the remote is "down")."""


class DatabaseBlocked(RuntimeError):
    """The contract suite blocks database queries here."""


@contextlib.contextmanager
def no_io() -> Iterator[None]:
    """No sockets can connect and no database query can run inside the block."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NetworkBlocked("network access is blocked by the contract suite")

    saved = (socket.socket.connect, socket.socket.connect_ex, socket.create_connection, socket.getaddrinfo)
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    with contextlib.ExitStack() as stack:
        try:
            from django.db import connections

            def block(*args: Any, **kwargs: Any) -> Any:
                raise DatabaseBlocked("database access is blocked by the contract suite")

            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(block))
        except Exception:  # Django not configured for databases: nothing to block
            pass
        try:
            yield
        finally:
            socket.socket.connect, socket.socket.connect_ex = saved[0], saved[1]  # type: ignore[method-assign]
            socket.create_connection, socket.getaddrinfo = saved[2], saved[3]


@contextlib.contextmanager
def no_blocking_sleep() -> Iterator[None]:
    """``time.sleep`` called on a thread that runs an event loop fails (it would block the loop)."""
    real_sleep = time.sleep

    def guarded(seconds: Any) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return real_sleep(seconds)
        raise AssertionError("time.sleep() called on the event loop: async plugin code must not block")

    time.sleep = guarded
    try:
        yield
    finally:
        time.sleep = real_sleep


class CapturedLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + repr(record.exc_info[1])
        self.texts.append(text)


@contextlib.contextmanager
def captured_logs() -> Iterator[CapturedLogs]:
    handler = CapturedLogs()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def close_thread_connections() -> None:
    """Close this thread's Django database connections (threads the suite starts must not leak)."""
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # Django without databases
        pass


def run(coro: Any) -> Any:
    """Run a coroutine to completion on a fresh event loop (contract checks are sync methods)."""
    return asyncio.run(coro)


def unguarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """The author's own method, without the platform's error wrapping (to check what *it* raises)."""
    return getattr(method, "__wrapped__", method)


def is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class ContractTest(unittest.TestCase):
    """Base of the contract suites; see the module docstring."""

    __test__ = False
    _plugin_attr: ClassVar[str] = ""
    _group: ClassVar[str] = ""
    #: ``{"test_contract_<name>": "why this check does not apply"}``.
    contract_skips: ClassVar[dict[str, str]] = {}
    #: Optional checks (beyond the public guide) to run: ``{"<name>"}`` runs
    #: ``test_contract_optional_<name>``.
    contract_opt_in: ClassVar[frozenset[str] | set[str]] = frozenset()
    #: Whether ``code`` and ``name`` must be declared (the guide shows them for connectors only;
    #: a plugin without ``code`` is known by its entry point's name).
    _identity_declared: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._plugin_attr and getattr(cls, cls._plugin_attr, None) is not None:
            cls.__test__ = True

    @classmethod
    def setUpClass(cls) -> None:
        if not cls._plugin_attr or getattr(cls, cls._plugin_attr, None) is None:
            raise unittest.SkipTest(f"{cls.__name__} is an abstract contract; set {cls._plugin_attr}.")
        super().setUpClass()

    def setUp(self) -> None:
        super().setUp()
        name = self._testMethodName
        if name in self.contract_skips:
            reason = self.contract_skips[name]
            if not isinstance(reason, str) or not reason.strip():
                self.fail(f"contract_skips[{name!r}] needs a reason: a check is opted out of only with one.")
            self.skipTest(f"opted out: {reason}")
        if name.startswith(OPTIONAL) and name[len(OPTIONAL) :] not in self.contract_opt_in:
            option = name[len(OPTIONAL) :]
            self.skipTest(
                f"optional check (beyond the guide's contract); opt in with contract_opt_in = {{{option!r}}}"
            )

    @property
    def plugin_cls(self) -> type:
        cls = getattr(self, self._plugin_attr)
        assert cls is not None
        return cls  # type: ignore[no-any-return]

    # -- checks shared by every suite ---------------------------------------------------------

    def test_contract_identity(self) -> None:
        """The class is concrete; ``code`` and ``name`` are declared and valid (for a secrets backend
        or an LLM provider, which the guide shows without them, only if declared); an installed
        entry point of the class is named after ``code``."""
        import inspect

        cls = self.plugin_cls
        self.assertFalse(inspect.isabstract(cls), f"{cls.__name__} leaves abstract methods unimplemented")
        code, name = getattr(cls, "code", None), getattr(cls, "name", None)
        if self._identity_declared or code:
            self.assertIsInstance(code, str, f"{cls.__name__}.code must be a string")
            self.assertRegex(
                code or "", CODE_PATTERN, f"{cls.__name__}.code must match {CODE_PATTERN.pattern}"
            )
        if self._identity_declared or name:
            self.assertIsInstance(name, str, f"{cls.__name__}.name must be a string")
            self.assertTrue((name or "").strip(), f"{cls.__name__}.name must not be empty")
        target = f"{cls.__module__}:{cls.__qualname__}"
        for ep in entry_points(group=self._group):
            if code and ep.value.replace(" ", "") == target:
                self.assertEqual(ep.name, code, f"entry point {ep.name!r} -> {target} must be named {code!r}")

    def test_contract_opt_ins_exist(self) -> None:
        """Every name in ``contract_opt_in`` is an optional check of this suite (a typo would
        silently run nothing)."""
        known = {n[len(OPTIONAL) :] for n in dir(type(self)) if n.startswith(OPTIONAL)}
        unknown = sorted(set(self.contract_opt_in) - known)
        self.assertFalse(
            unknown, f"contract_opt_in names no such optional check: {unknown}; known: {sorted(known)}"
        )

    def test_contract_no_silent_overrides(self) -> None:
        """A check overridden in the subclass must be opted out of, with a reason, in contract_skips."""
        base = next(c for c in type(self).__mro__ if c.__dict__.get("_suite_base"))
        for name in dir(base):
            if not name.startswith("test_contract_"):
                continue
            if getattr(type(self), name) is not getattr(base, name) and name not in self.contract_skips:
                self.fail(
                    f"{name} is overridden; opt out with contract_skips = {{{name!r}: 'reason'}} instead."
                )
