"""The one exception hierarchy of Django Automate.

Each class's docstring is its default message; raise with a more specific message where there is
something the user can act on. Messages never contain a secret's value (a secret's *name* is fine).

::

    AutomateError
    ├── ConfigurationError            (also django ImproperlyConfigured)
    ├── DatabaseUnavailable           the database did not answer in time
    │   └── PartitioningBlocked       a long transaction kept the run tables from being partitioned
    ├── LeaseExpired                  a job's lease was taken over: its old worker must stop writing
    ├── PluginError
    │   ├── UnknownPluginError        (also KeyError) no plugin with that code
    │   ├── PluginLoadError           the plugin's entry point failed to import or is invalid
    │   └── DuplicatePluginError      two distributions claim the same code
    ├── IngestError                   a webhook was refused; carries an HTTP status and a reason code
    ├── ApiError                      an API request was refused; carries an HTTP status and a code
    ├── TemplateError                 a step's template failed to compile or render
    ├── StepOutputTooLarge            a step returned more than AUTOMATE_STEP_OUTPUT_MAX_BYTES
    ├── WorkflowError                 a request about workflows or runs cannot be carried out
    │   ├── FlowLimitExceeded         a for_each, parallel, nesting or call limit was passed
    │   └── ApprovalError             an approval is unknown, already answered or expired
    ├── ConnectorError                a connector failed; carries ``retryable`` and ``retry_after``
    │   ├── ConnectorConfigError      invalid configuration (not retryable)
    │   ├── UnknownActionError        the connector has no such action (not retryable)
    │   └── ConnectorTimeout          the call took longer than its timeout (retryable)
    ├── SecretsError
    │   ├── SecretNotFoundError       (also KeyError) no backend has the key
    │   ├── SecretAccessDeniedError   a backend refused access (stops the search: never falls through)
    │   └── SecretsBackendUnavailable a backend could not be reached
    └── LLMError                      an LLM provider failed; carries ``retryable`` and ``retry_after``
        ├── LLMAuthError              the provider refused the credentials (not retryable)
        ├── LLMRateLimitError         the provider is rate limiting (retryable, with ``retry_after``)
        ├── LLMTimeoutError           the provider did not answer in time (retryable)
        ├── LLMContextTooLongError    the prompt does not fit the model's context window
        ├── LLMInvalidOptionsError    unknown or invalid chat options (not retryable)
        └── BudgetExceededError       a token budget would be exceeded (not retryable)
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class AutomateError(Exception):
    """An error in Django Automate."""

    def __init__(self, message: str | None = None, *args: Any) -> None:
        super().__init__(message or (self.__doc__ or "").strip(), *args)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(AutomateError, ImproperlyConfigured):
    """Django Automate is not configured correctly."""


class DatabaseUnavailable(AutomateError):
    """The database is unavailable; try again shortly."""

    #: What is known of a write that met this: "unknown" unless it is known that nothing was
    #: written ("not_recorded", ``automate_core.ingest.dbwait.NotRecorded``).
    outcome: str = "unknown"


class PartitioningBlocked(DatabaseUnavailable):
    """A long transaction holds the run tables, so they could not be switched to partitioned ones; nothing was changed. Run `automate migrate` again when it has ended (pg_stat_activity shows it)."""  # noqa: E501


class LeaseExpired(AutomateError):
    """The worker running the job stopped renewing its lease (killed, its host gone, or cut off from the database); the job was given to another worker."""  # noqa: E501


# --- plugins ---------------------------------------------------------------------------------


class PluginError(AutomateError):
    """A plugin could not be used."""


class UnknownPluginError(PluginError, KeyError):
    """No plugin is registered under that code."""

    def __init__(self, group: str, code: str, known: list[str] | None = None) -> None:
        hint = f" Installed: {', '.join(sorted(known))}." if known else ""
        super().__init__(f"No plugin {code!r} in entry-point group {group!r}.{hint}")
        self.group, self.code = group, code


class PluginLoadError(PluginError):
    """A plugin's entry point failed to load."""

    def __init__(self, group: str, code: str, reason: str, distribution: str = "") -> None:
        where = f" (from {distribution})" if distribution else ""
        super().__init__(f"Plugin {code!r} in {group!r}{where} failed to load: {reason}")
        self.group, self.code, self.reason, self.distribution = group, code, reason, distribution


class DuplicatePluginError(PluginError):
    """Two distributions register the same plugin code; neither is used."""

    def __init__(self, group: str, code: str, distributions: list[str]) -> None:
        super().__init__(
            f"Plugin code {code!r} in {group!r} is registered by several distributions "
            f"({', '.join(distributions)}); neither is used. Pick one in settings "
            f"(AUTOMATE_PLUGINS = {{{group!r}: {{{code!r}: 'module:Class'}}}})."
        )
        self.group, self.code, self.distributions = group, code, distributions


# --- ingestion -------------------------------------------------------------------------------


class IngestError(AutomateError):
    """The webhook was refused."""

    status: int = 400
    reason: str = "bad_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        if reason is not None:
            self.reason = reason
        self.headers = headers or {}


class ApiError(AutomateError):
    """The API request was refused."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "invalid_request",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


# --- execution -------------------------------------------------------------------------------


class TemplateError(AutomateError):
    """A template failed to compile or render."""


class StepOutputTooLarge(AutomateError):
    """The step's output is larger than the limit (AUTOMATE_STEP_OUTPUT_MAX_BYTES)."""


class WorkflowError(AutomateError):
    """The request about a workflow or a run cannot be carried out as asked."""


class FlowLimitExceeded(WorkflowError):
    """A flow construct passed one of its limits (AUTOMATE_FLOW_MAX_*)."""


class ApprovalError(WorkflowError):
    """The approval cannot be answered: it is unknown, already answered, expired or cancelled."""


class _RemoteFailure(AutomateError):
    """A failure of a call to something outside the platform.

    ``retryable`` tells the engine whether trying again later may succeed (``default_retryable``
    unless given); ``retry_after`` is the earliest sensible retry in seconds, when the remote side
    said so; ``status_code`` the remote's HTTP status, when there was one.
    """

    default_retryable: bool = True

    def __init__(
        self,
        message: str | None = None,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.status_code = status_code


class ConnectorError(_RemoteFailure):
    """A connector failed to perform its action.

    ``retryable`` tells the engine whether trying again later may succeed (the default);
    ``retry_after`` is the earliest sensible retry in seconds, when the remote side said so.
    """


class ConnectorConfigError(ConnectorError):
    """The connector's configuration is invalid."""

    default_retryable = False


class UnknownActionError(ConnectorError):
    """The connector does not support that action."""

    default_retryable = False


class ConnectorTimeout(ConnectorError):
    """The connector did not finish within its timeout."""


# --- secrets ---------------------------------------------------------------------------------


class SecretsError(AutomateError):
    """A secret could not be resolved."""


class SecretNotFoundError(SecretsError, KeyError):
    """The secret was not found in any configured backend."""


class SecretAccessDeniedError(SecretsError):
    """A secrets backend refused access to the secret.

    The resolver stops here instead of asking the next backend: a deny must never be silently
    downgraded to whatever another backend holds under the same name. Not retryable: a policy
    does not change by waiting; fix it, then replay.
    """

    retryable = False


class SecretsBackendUnavailable(SecretsError):
    """A secrets backend could not be reached."""


# --- LLM ------------------------------------------------------------------------------------


class LLMError(_RemoteFailure):
    """An LLM provider failed."""

    default_retryable = False


class LLMAuthError(LLMError):
    """The LLM provider refused the credentials; check the API key."""


class LLMRateLimitError(LLMError):
    """The LLM provider is rate limiting; try again after ``retry_after`` seconds."""

    default_retryable = True


class LLMTimeoutError(LLMError):
    """The LLM provider did not answer in time."""

    default_retryable = True


class LLMContextTooLongError(LLMError):
    """The prompt is too long for the model's context window; shorten it or pick a larger model."""


class LLMInvalidOptionsError(LLMError):
    """The chat options are invalid."""


class BudgetExceededError(LLMError):
    """The call would exceed an LLM token budget."""

    def __init__(self, message: str | None = None, *, scope: str = "", limit: int = 0) -> None:
        super().__init__(message)
        self.scope, self.limit = scope, limit
