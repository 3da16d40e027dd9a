"""Schedules of the cron_scheduler role as systemd OnCalendar expressions.

A job's schedule is written the way a team leaving Heroku or crontab knows it:

- cron syntax, five fields (``*/15 * * * 1-5``) or a macro (``@hourly``, ``@daily``, ``@weekly``,
  ``@monthly``, ``@yearly``);
- Heroku Scheduler's words: ``every minute``, ``every 10 minutes``, ``every 2 hours``,
  ``hourly`` / ``every hour`` (``at :MM``), ``daily`` / ``every day`` (``at HH:MM``).

``cron_scheduler_calendar`` turns one into a list of OnCalendar expressions (two when cron's
"day of month OR day of week" rule needs them); ``cron_scheduler_schedule_errors`` lists, for a
list of jobs, every schedule it cannot read, so the role can stop with one clear message before
anything changes. The expressions are then checked by ``systemd-analyze calendar`` on the host.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
# name, lowest, highest, names (index 0 is the lowest value)
FIELDS = [
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
]
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule that is neither cron syntax nor Heroku's words."""


def _value(text: str, field: tuple) -> int:
    name, low, high, names = field
    word = text.lower()
    if names and word in names:
        return names.index(word) + (1 if name == "month" else 0)
    if not text.isdigit():
        raise ScheduleError(f"{text!r} is not a valid {name}")
    number = int(text)
    if not low <= number <= high:
        raise ScheduleError(f"{name} {number} is out of range {low}-{high}")
    return number


def _field(text: str, field: tuple) -> set[int]:
    name, low, high, _ = field
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{item!r}: the step of a {name} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, field), _value(last, field)
            if start > end:
                raise ScheduleError(f"{item!r}: the range of a {name} runs backwards")
        else:
            start = _value(base, field)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return values


def _numbers(values: set[int], text: str, low: int, high: int) -> str:
    if values == set(range(low, high + 1)):
        return "*"
    match = re.fullmatch(r"\*/(\d+)", text)
    if match:  # every n: systemd's own repetition syntax (start/step) reads better than a list
        return f"{low}/{match.group(1)}"
    return ",".join(f"{v:02d}" if high >= 23 and low == 0 else str(v) for v in sorted(values))


def _from_cron(text: str) -> list[str]:
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError("cron syntax has five fields: minute hour day-of-month month day-of-week")
    sets = [_field(part, spec) for part, spec in zip(fields, FIELDS, strict=True)]
    minute = _numbers(sets[0], fields[0], 0, 59)
    hour = _numbers(sets[1], fields[1], 0, 23)
    dom = _numbers(sets[2], fields[2], 1, 31)
    month = _numbers(sets[3], fields[3], 1, 12)
    days = {7 if d == 0 else d for d in sets[4]}  # 0 and 7 are both Sunday
    dow = "" if len(days) == 7 else ",".join(SYSTEMD_DAYS[d % 7] for d in sorted(days))
    time = f"{hour}:{minute}:00"
    # cron's own rule: a field starting with * does not count as a restriction for the OR below.
    if dow and not fields[2].startswith("*") and not fields[4].startswith("*"):
        # cron runs when EITHER the day of month or the day of week matches; systemd wants both
        # in one expression, so each gets its own.
        return [f"*-{month}-{dom} {time}", f"{dow} *-{month}-* {time}"]
    if dow:
        return [f"{dow} *-{month}-{dom} {time}"]
    return [f"*-{month}-{dom} {time}"]


def _from_words(text: str) -> list[str] | None:
    words = " ".join(text.lower().split())
    if words == "every minute":
        return ["*-*-* *:*:00"]
    match = re.fullmatch(r"every (\d+) minutes?", words)
    if match:
        n = int(match.group(1))
        if not 1 <= n <= 59 or 60 % n:
            raise ScheduleError(f"every {n} minutes: use a number of minutes that divides an hour (1-30)")
        return [f"*-*-* *:00/{n}:00"]
    match = re.fullmatch(r"every (\d+) hours?", words)
    if match:
        n = int(match.group(1))
        if not 1 <= n <= 23 or 24 % n:
            raise ScheduleError(f"every {n} hours: use a number of hours that divides a day (1-12)")
        return [f"*-*-* 00/{n}:00:00"]
    match = re.fullmatch(r"(?:hourly|every hour)(?: at :([0-5]\d))?", words)
    if match:
        return [f"*-*-* *:{match.group(1) or '00'}:00"]
    match = re.fullmatch(r"(?:daily|every day)(?: at (\S+))?", words)
    if match:
        at = match.group(1) or "00:00"
        clock = _HHMM.match(at)
        if not clock:
            raise ScheduleError(f"{at!r} is not a time of day (HH:MM, 24-hour)")
        return [f"*-*-* {int(clock.group(1)):02d}:{clock.group(2)}:00"]
    return None


def to_calendar(schedule: str) -> list[str]:
    """The OnCalendar expressions of a schedule, or ScheduleError saying what is wrong."""
    if not isinstance(schedule, str) or not schedule.strip():
        raise ScheduleError("the schedule is empty")
    text = schedule.strip()
    words = _from_words(text)
    if words is not None:
        return words
    if text.lower() in MACROS:
        return _from_cron(MACROS[text.lower()])
    if text.startswith("@"):
        raise ScheduleError(f"{text} is not supported (use @hourly, @daily, @weekly, @monthly or @yearly)")
    if re.fullmatch(r"[0-9A-Za-z*/,\- ]+", text) and len(text.split()) == 5:
        return _from_cron(text)
    raise ScheduleError(
        "not cron syntax (five fields) nor one of: every minute, every N minutes, every N hours, "
        "hourly [at :MM], daily [at HH:MM]"
    )


def cron_scheduler_calendar(job: dict) -> list[str]:
    """A job's OnCalendar expressions: its `calendar` as given, else its schedule converted."""
    if job.get("calendar"):
        return [job["calendar"]]
    try:
        return to_calendar(job.get("schedule", ""))
    except ScheduleError as error:
        message = f"job {job.get('name')}: schedule {job.get('schedule')!r}: {error}"
        raise AnsibleFilterError(message) from None


def cron_scheduler_with_calendars(jobs: list) -> list[dict]:
    """The jobs as the runner reads them: types settled, OnCalendar expressions in on_calendar."""
    return [
        {
            "name": job["name"],
            "schedule": job.get("schedule") or f"calendar {job['calendar']}",
            "calendar": job.get("calendar") or "",
            "on_calendar": cron_scheduler_calendar(job),
            "command": job["command"],
            "timeout": int(job["timeout"]),
            "overlap": bool(job.get("overlap")),
            "mail_to": list(job.get("mail_to") or []),
        }
        for job in jobs
    ]


def cron_scheduler_schedule_errors(jobs: list) -> list[str]:
    """One message per job whose schedule cannot be read (none: every schedule is fine)."""
    errors = []
    for job in jobs:
        if job.get("calendar") and job.get("schedule"):
            errors.append(f"job {job.get('name')}: give a schedule or a systemd calendar, not both")
            continue
        if job.get("calendar"):
            continue
        if not job.get("schedule"):
            errors.append(f"job {job.get('name')}: give a schedule (or a systemd calendar)")
            continue
        try:
            to_calendar(job["schedule"])
        except ScheduleError as error:
            errors.append(f"job {job.get('name')}: schedule {job['schedule']!r}: {error}")
    return errors


class FilterModule:
    """cron_scheduler_calendar, cron_scheduler_schedule_errors, cron_scheduler_with_calendars."""

    def filters(self) -> dict:
        return {
            "cron_scheduler_calendar": cron_scheduler_calendar,
            "cron_scheduler_schedule_errors": cron_scheduler_schedule_errors,
            "cron_scheduler_with_calendars": cron_scheduler_with_calendars,
        }
