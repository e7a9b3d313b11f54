"""Dead letters: the one definition that the console's card and list, ``automate dead`` and the
``automate_dead_letters`` gauge all count.

A job is *dead* when it used up its attempts (or failed in a way retrying cannot fix). A dead job
is a **dead letter**, something an operator still has to act on, until it is *resolved*:

* it was replayed (a new job has ``replay_of`` = it; if that one dies too, it is the dead letter
  now), or
* its event was run again successfully: the job recorded runs, and every one of them that did not
  end well (succeeded or skipped) was followed by a succeeded run of the same workflow on the same
  event (a resume, a replay from the start, a later delivery), or by a succeeded replay of that
  run (which, with an edited payload, is on a new event).

A dead job with no run at all (it died before any workflow ran, or it is a Django task) is
resolved only by a replay: nothing else shows its work was done.

Everything is one SQL condition, :data:`DEAD_LETTER` (on the outbox job aliased ``j``), read
through indexes only: dead jobs by the partial index ``automate_outbox_dead``, replays by
``automate_outbox_replayed_once``, a job's runs by the run's job index, later runs by
``automate_run_event_wf`` and replays of a run by the run's parent index. Its cost follows the
number of dead jobs, not the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SQL is read at scrape time by code that must not need Django's apps loaded
    from django.db.models import QuerySet

    from automate_core.models import OutboxJob

# The outcomes of a run that need nothing done.
_WELL = "('succeeded', 'skipped')"

# Resolved by its runs: among the job's runs that did not end well there is at least one, and each
# was followed by a success (bool_and over no rows is NULL: not resolved). Written as a scalar
# subquery so that it stays correlated, evaluated per dead job through the run's job index: as
# "NOT EXISTS (...) OR EXISTS (...)" the planner hashed both subqueries, reading every run of the
# history (385 ms with 500,000 runs; this form reads only the dead jobs' runs, see the tests).
DEAD_LETTER = f"""
j.status = 'dead'
AND NOT EXISTS (SELECT 1 FROM automate_outbox_job r WHERE r.replay_of_id = j.id)
AND NOT coalesce((
    SELECT bool_and(
               EXISTS (SELECT 1 FROM automate_run s
                        WHERE s.event_id = f.event_id AND s.workflow_id = f.workflow_id
                          AND s.id > f.id AND s.status = 'succeeded')
               OR EXISTS (SELECT 1 FROM automate_run s WHERE s.parent_id = f.id AND s.status = 'succeeded'))
      FROM automate_run f
     WHERE f.job_id = j.id AND f.status NOT IN {_WELL}
), false)
"""

#: The ids of the dead letters.
DEAD_LETTER_IDS = f"SELECT j.id FROM automate_outbox_job j WHERE {DEAD_LETTER}"

#: How many dead letters there are (the dashboard's card, the list's card, the gauge).
DEAD_LETTERS_COUNT = f"SELECT count(*) FROM automate_outbox_job j WHERE {DEAD_LETTER}"


def dead_letters(jobs: QuerySet[OutboxJob] | None = None) -> QuerySet[OutboxJob]:
    """The dead letters among ``jobs`` (default: every job), as a queryset to filter further."""
    from django.db.models.expressions import RawSQL

    from automate_core.models import OutboxJob

    base = OutboxJob.objects.all() if jobs is None else jobs
    return base.filter(pk__in=RawSQL(DEAD_LETTER_IDS, ()))


def count() -> int:
    """How many dead letters there are now (Django's connection; the gauge reads the same SQL)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(DEAD_LETTERS_COUNT)
        return int(cursor.fetchone()[0])
