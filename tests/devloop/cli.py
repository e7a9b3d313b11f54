"""Running ``automate`` as a user does: a subprocess in a folder of its own, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from tests.acceptance.test_platform import AUTOMATE

#: variables of the test process that a user's shell would not have
_TEST_ONLY = ("DATABASE_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "AUTOMATE_HOME", "DEBUG")


def user_env(**values: str) -> dict[str, str]:
    """The environment of a user's shell: no test settings, no platform variables but ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATE_") and k not in _TEST_ONLY}
    env["AUTOMATE_DOTENV"] = "0"  # no .env of the checkout's; tests that want one name it
    if "AUTOMATE_CEILING" in os.environ:  # the test's own folder: a .automate/ above it is not ours
        env["AUTOMATE_CEILING"] = os.environ["AUTOMATE_CEILING"]
    env.update(values)
    return env


def automate(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTOMATE, *args],
        cwd=cwd,
        env=user_env() if env is None else env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one line on stderr (no traceback); that line."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("automate: "), lines[0]
    return lines[0]


class Output:
    """A process's output, read as it comes; ``wait_for`` a line without sleeping."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines, self.changed = proc, list[str](), threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, text: str, within: float = 30.0) -> str:
        deadline = time.monotonic() + within
        with self.changed:
            while True:
                found = [line for line in self.lines if text in line]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, f"no {text!r} in:\n{''.join(self.lines)}"
                self.changed.wait(left)

    def close(self) -> None:
        """After the process ended: the rest of its output read, the pipe closed."""
        self.reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def text(self) -> str:
        with self.changed:
            return "".join(self.lines)
