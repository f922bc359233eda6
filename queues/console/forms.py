"""Console forms: list filters (which also rebuild the query for bulk actions) and queue settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from ..encryption import META_KEY, search_note
from ..filters import encrypted
from ..models import DeadLetter, Job, Queue
from ..registry import registered_tasks
from ..states import Status


def _queue_choices() -> list[tuple[str, str]]:
    return [("", "All queues"), *((name, name) for name in Queue.objects.values_list("name", flat=True))]


def _task_choices() -> list[tuple[str, str]]:
    return [("", "All tasks"), *((path, path) for path in registered_tasks())]


class FilterForm(forms.Form):
    """A list's filters from the query string; a bulk action over "all matching" rebuilds
    the same query from the same fields."""

    queue = forms.ChoiceField(required=False)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(data or {})
        self.fields["queue"].choices = _queue_choices()

    def filters(self) -> dict[str, str]:
        """The valid, non-empty filters, for links, the socket URL and hidden fields."""
        if not self.is_valid():
            return {}
        return {name: value for name, value in self.cleaned_data.items() if value}


class JobFilterForm(FilterForm):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
    task = forms.CharField(required=False, max_length=255)
    q = forms.CharField(required=False, max_length=200, label="Search")

    @property
    def task_choices(self) -> list[tuple[str, str]]:
        return _task_choices()

    def apply(self, jobs: QuerySet[Job]) -> QuerySet[Job]:
        found = self.filters()
        if queue := found.get("queue"):
            jobs = jobs.filter(queue__name=queue)
        if status := found.get("status"):
            jobs = jobs.filter(status=status)
        if task := found.get("task"):
            jobs = jobs.filter(task_path=task)
        if text := found.get("q"):
            jobs = with_args_text(jobs).filter(search(text), id__gt=newest_job_id() - SEARCH_WINDOW)
        return jobs

    def search_note(self, jobs: QuerySet[Job]) -> str | None:
        """With a text search: how many encrypted jobs it could not look into (their arguments
        are ciphertext), among those the other filters and the search window keep."""
        found = self.filters()
        if not found.get("q"):
            return None
        others = JobFilterForm({name: value for name, value in found.items() if name != "q"}).apply(jobs)
        return search_note(encrypted(others.filter(id__gt=newest_job_id() - SEARCH_WINDOW)).count())


SEARCH_WINDOW = 50_000
"""Text search reads the newest this-many jobs: matching text inside JSON needs a scan,
and a scan over every row of a big table would take seconds (filters by queue,
status and task use indexes and reach every job)."""


def newest_job_id() -> int:
    return Job.objects.order_by("-id").values_list("id", flat=True).first() or 0


def search(text: str) -> Q:
    """``#123`` finds that id; other text matches the id, the task path or the JSON arguments."""
    text = text.strip()
    if text.startswith("#") and text[1:].isdigit():
        return Q(id=int(text[1:]))
    found = Q(task_path__icontains=text) | (Q(args_text__icontains=text) & ~Q(meta__has_key=META_KEY))
    return found | Q(id=int(text)) if text.isdigit() else found


def with_args_text(jobs: QuerySet[Job]) -> QuerySet[Job]:
    return jobs.annotate(args_text=Cast("args", TextField()))


class DeadFilterForm(FilterForm):
    task = forms.CharField(required=False, max_length=255)
    error_type = forms.CharField(required=False, max_length=255)
    error_message = forms.CharField(required=False)

    def apply(self, letters: QuerySet[DeadLetter]) -> QuerySet[DeadLetter]:
        found = self.filters()
        lookups = {"queue": "queue_name", "task": "task_path", "error_type": "error_type"}
        letters = letters.filter(**{lookups[k]: v for k, v in found.items() if k in lookups})
        if "error_message" in found:
            letters = letters.filter(error_message=found["error_message"])
        return letters


class QueueSettingsForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = ["concurrency", "rate_limit", "max_attempts", "timeout", "retention", "encrypt"]


class QueueCreateForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = ["name", "concurrency", "rate_limit", "max_attempts", "timeout", "encrypt"]
