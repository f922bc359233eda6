"""Django admin for every Taskweb model.

Jobs and dead letters are read-only here: their state changes only through the
lifecycle, so the admin offers actions (retry, cancel, replay) that call it, and a
submission form that enqueues through it. Queues are created, changed and deleted
through the lifecycle too, and deletes follow the API's rules: a running job is
never deleted, and a queue with a running job is refused with the reason (shown on
Django's own "cannot delete" page). API tokens are created here and shown once,
like with ``taskctl token create``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest
from django.utils import timezone

from . import auth_tokens, bounds, cron, lifecycle, rules, storable, values
from .exceptions import InvalidJob, QueueConflict, TaskwebError
from .filters import queue_choices, task_choices
from .models import (
    ApiToken,
    Attempt,
    Circuit,
    DeadLetter,
    Job,
    Lease,
    MinuteStat,
    Queue,
    RuntimeBucket,
    Schedule,
    ScheduleRun,
    Worker,
)
from .states import TRANSITIONS, Status


def _needs(action: str) -> Callable[[admin.ModelAdmin, HttpRequest], bool]:
    """A ``has_<name>_permission`` for admin actions: the rule of ``action``, as at every door.

    Django offers an action without ``permissions`` to anyone who may view the list."""

    def check(modeladmin: admin.ModelAdmin, request: HttpRequest) -> bool:
        return rules.can(request.user, action)

    return check


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by workers and the lifecycle: look, filter, search, never edit or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LifecycleDeletes(admin.ModelAdmin):
    """Deletes (one object, or the ``delete_selected`` action) go through the lifecycle.

    ``refusals`` names what may not go; Django then shows its "cannot delete" page with
    those reasons and deletes nothing. ``remove`` deletes the rest and reports what it
    could not (something may have started running since the confirmation page).
    """

    def refusals(self, objs: Iterable[Any]) -> list[str]:
        raise NotImplementedError

    def remove(self, request: HttpRequest, objs: Iterable[Any]) -> None:
        raise NotImplementedError

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        # A job's attempts and dead letter go with it, whoever may not delete them by hand.
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), [*protected, *self.refusals(objs)]

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.remove(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.remove(request, queryset)


def _running_refusals(jobs: QuerySet[Job]) -> list[str]:
    running = jobs.filter(status__in=set(Status) - TRANSITIONS["delete"]).order_by("id")
    return [
        f"Job #{job_id} is running: cancel it, or let it finish, first."
        for job_id in running.values_list("id", flat=True)[:20]
    ]


def _json_field(value: str, kind: type, name: str) -> Any:
    try:
        parsed = storable.loads(value or ("[]" if kind is list else "{}"))
    except storable.Unstorable as exc:
        raise ValidationError(f"Cannot be stored: {exc}.") from None
    except ValueError as exc:
        raise ValidationError(f"Not valid JSON: {exc}") from None
    if not isinstance(parsed, kind):
        raise ValidationError(f"{name} must be a JSON {'array' if kind is list else 'object'}.")
    return parsed


class StorableJSONField(forms.JSONField):
    """A JSON form field that refuses, with a message, what no database stores (NaN, NUL,
    lone surrogates) and nesting past the limit, before any parser recurses into it."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                storable.loads(value)
            except storable.Unstorable as exc:
                raise ValidationError(f"Cannot be stored: {exc}.") from None
            except ValueError:
                pass  # not JSON: the parent field says so
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Shown back as typed, never parsed, when it nests too deep to parse.
        if isinstance(data, str) and bounds.json_depth(data) > bounds.MAX_DEPTH:
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)


# --- queues ------------------------------------------------------------------------


@admin.register(Queue)
class QueueAdmin(LifecycleDeletes):
    list_display = (
        "name", "paused", "concurrency", "rate_limit", "max_attempts", "timeout", "retention", "encrypt",
    )  # fmt: skip
    list_filter = ("paused",)
    search_fields = ("name",)
    actions = ("pause", "resume", "purge")
    has_pause_permission = _needs("queue.pause")
    has_purge_permission = _needs("queue.purge")

    def get_readonly_fields(self, request: HttpRequest, obj: Queue | None = None) -> tuple[str, ...]:
        # Renaming a queue would strand every producer and worker that names it.
        return ("name", "created_at") if obj else ("created_at",)

    def save_model(self, request: HttpRequest, obj: Queue, form: Any, change: bool) -> None:
        """Through the lifecycle, as from the API: the same checks, the same writes."""
        settings = {name: form.cleaned_data[name] for name in lifecycle.SETTINGS if name in form.changed_data}
        if change:
            lifecycle.update_queue(obj.name, **settings)
        else:
            obj.pk = lifecycle.create_queue(obj.name, **settings).pk
        if "paused" in form.changed_data:
            lifecycle.set_paused(obj.name, form.cleaned_data["paused"])

    def refusals(self, queues: Iterable[Queue]) -> list[str]:
        names = [queue.name for queue in queues]
        refused = [
            f"Queue {name} is the default queue; purge it instead." for name in names if name == "default"
        ]
        busy = Job.objects.filter(queue__name__in=names, status__in=set(Status) - TRANSITIONS["delete"])
        for name in sorted(set(busy.values_list("queue__name", flat=True))):
            refused.append(f"Queue {name} has running jobs; pause it and let them finish first.")
        return refused

    def remove(self, request: HttpRequest, queues: Iterable[Queue]) -> None:
        for queue in list(queues):
            try:
                lifecycle.delete_queue(queue.name)
            except QueueConflict as exc:
                self.message_user(request, str(exc), messages.ERROR)

    @admin.action(description="Pause selected queues", permissions=["pause"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        for queue in queryset:
            lifecycle.set_paused(queue.name, True)
        self.message_user(request, f"Paused {len(queryset)} queue(s).")

    @admin.action(description="Resume selected queues", permissions=["pause"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        for queue in queryset:
            lifecycle.set_paused(queue.name, False)
        self.message_user(request, f"Resumed {len(queryset)} queue(s).")

    @admin.action(description="Purge waiting jobs of selected queues", permissions=["purge"])
    def purge(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        count = sum(lifecycle.purge_queue(queue.name) for queue in queryset)
        self.message_user(request, f"Deleted {count} waiting job(s).")


# --- jobs --------------------------------------------------------------------------


class JobSubmitForm(forms.ModelForm):
    """Enqueue a job: a registered task, a queue, and JSON arguments checked before saving."""

    task = forms.ChoiceField(choices=task_choices)
    queue_name = forms.ChoiceField(label="Queue", choices=queue_choices)
    args_json = forms.CharField(
        label="Args",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text='JSON array: [1, "a"]',
    )
    kwargs_json = forms.CharField(
        label="Kwargs",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text='JSON object: {"a": 1}',
    )
    priority_value = forms.CharField(
        label="Priority", initial="normal", help_text="-100..100 or critical, high, normal, low."
    )
    delay = forms.FloatField(
        required=False,
        min_value=0,
        max_value=bounds.MAX_DELAY,
        help_text="Seconds from now before it may run.",
    )
    max_attempts_value = forms.IntegerField(
        label="Max attempts", required=False, min_value=1, max_value=bounds.MAX_ATTEMPTS
    )
    timeout_value = forms.IntegerField(
        label="Timeout", required=False, min_value=1, max_value=bounds.MAX_TIMEOUT, help_text="Seconds."
    )
    idempotency_key_value = forms.CharField(label="Idempotency key", required=False, max_length=255)

    class Meta:
        model = Job
        fields: list[str] = []

    def clean_args_json(self) -> list[Any]:
        return _json_field(self.cleaned_data["args_json"], list, "Args")

    def clean_kwargs_json(self) -> dict[str, Any]:
        return _json_field(self.cleaned_data["kwargs_json"], dict, "Kwargs")

    def clean_priority_value(self) -> int:
        try:
            return bounds.parse_priority(self.cleaned_data["priority_value"])
        except InvalidJob as exc:
            raise ValidationError(str(exc)) from None

    def clean_queue_name(self) -> str:
        try:
            return lifecycle.get_queue(self.cleaned_data["queue_name"]).name
        except InvalidJob as exc:
            raise ValidationError(str(exc)) from None

    def spec(self) -> values.JobSpec:
        data = self.cleaned_data
        delay = data.get("delay")
        return values.JobSpec(
            task_path=data["task"],
            args=data["args_json"],
            kwargs=data["kwargs_json"],
            queue=data["queue_name"],
            priority=data["priority_value"],
            run_after=timezone.now() + timedelta(seconds=delay) if delay else None,
            max_attempts=data.get("max_attempts_value"),
            timeout=data.get("timeout_value"),
            idempotency_key=data.get("idempotency_key_value") or None,
        )


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "outcome",
        "worker_id",
        "started_at",
        "duration",
        "error_type",
        "error_message",
        "traceback",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    jobs: QuerySet[Job],
    verb: str,
    act: Callable[[int], Any],
) -> None:
    """Apply one lifecycle action to each job; report what worked and why the rest did not."""
    done, refused = 0, []
    for pk in jobs.values_list("pk", flat=True):
        try:
            act(pk)
            done += 1
        except TaskwebError as exc:
            refused.append(str(exc))
    if done:
        modeladmin.message_user(request, f"{verb} {done} job(s).")
    for reason in refused[:10]:
        modeladmin.message_user(request, reason, level=messages.WARNING)


@admin.register(Job)
class JobAdmin(LifecycleDeletes):
    list_display = (
        "id",
        "task_path",
        "queue",
        "status",
        "priority",
        "attempts",
        "enqueued_at",
        "finished_at",
    )
    list_filter = ("status", "queue", "task_path")
    search_fields = ("=id", "task_path", "idempotency_key", "worker_id")
    list_select_related = ("queue",)
    date_hierarchy = "enqueued_at"
    actions = ("retry", "cancel", "replay")
    has_retry_permission = _needs("job.retry")
    has_cancel_permission = _needs("job.cancel")
    has_replay_permission = _needs("dead.replay")
    inlines = (AttemptInline,)

    def get_form(self, request: HttpRequest, obj: Job | None = None, **kwargs: Any) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = JobSubmitForm
            kwargs["fields"] = list(JobSubmitForm.base_fields)
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Job | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": list(JobSubmitForm.base_fields)})]
        return super().get_fieldsets(request, obj)

    def get_inlines(self, request: HttpRequest, obj: Job | None) -> Any:
        return self.inlines if obj else ()

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> Any:
        return [f.name for f in Job._meta.fields] if obj else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing is fine, saving a job's row by hand is not: status belongs to the lifecycle.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Job, form: Any, change: bool) -> None:
        job, created = lifecycle.enqueue(form.spec())  # the form checked everything enqueue checks
        obj.pk = job.pk
        if not created:
            self.message_user(
                request, f"A job with this idempotency key exists: #{job.pk}.", messages.WARNING
            )

    def refusals(self, jobs: Iterable[Job]) -> list[str]:
        return _running_refusals(Job.objects.filter(pk__in=[job.pk for job in jobs]))

    def remove(self, request: HttpRequest, jobs: Iterable[Job]) -> None:
        ids = [job.pk for job in jobs]
        if (deleted := lifecycle.delete_jobs(ids)) < len(ids):
            kept = len(ids) - deleted
            self.message_user(
                request, f"{kept} job(s) started running meanwhile and were kept.", messages.WARNING
            )

    @admin.action(description="Retry selected jobs", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        _each(
            self,
            request,
            queryset,
            "Re-queued",
            lambda pk: lifecycle.retry(pk, by=request.user.get_username()),
        )

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        _each(self, request, queryset, "Cancelled", lifecycle.cancel)

    @admin.action(description="Replay selected dead jobs", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        count = lifecycle.replay_many(queryset, by=request.user.get_username())
        self.message_user(request, f"Replayed {count} dead job(s).")
        if count < len(queryset):
            self.message_user(request, "Jobs that were not dead were left as they are.", messages.WARNING)


@admin.register(DeadLetter)
class DeadLetterAdmin(LifecycleDeletes, ReadOnlyAdmin):
    """Deleting a dead letter discards its dead job (with its history), as the API's DELETE does."""

    list_display = ("job", "queue_name", "task_path", "reason", "error_type", "created_at", "replayed_at")
    list_filter = ("queue_name", "reason", "error_type", ("replayed_at", admin.EmptyFieldListFilter))
    search_fields = ("=job__id", "task_path", "error_type", "error_message")
    actions = ("replay",)
    has_replay_permission = _needs("dead.replay")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return rules.can(request.user, "job.delete")

    def refusals(self, letters: Iterable[DeadLetter]) -> list[str]:
        jobs = Job.objects.filter(pk__in=[letter.job_id for letter in letters]).exclude(status=Status.DEAD)
        return [
            f"Job #{job_id} is no longer dead (it was replayed)."
            for job_id in jobs.values_list("id", flat=True)
        ]

    def remove(self, request: HttpRequest, letters: Iterable[DeadLetter]) -> None:
        lifecycle.delete_jobs([letter.job_id for letter in letters], dead_only=True)

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        jobs = Job.objects.filter(pk__in=queryset.values("job_id"))
        count = lifecycle.replay_many(jobs, by=request.user.get_username())
        self.message_user(request, f"Replayed {count} dead job(s).")


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    list_display = ("job", "number", "outcome", "worker_id", "finished_at", "duration", "error_type")
    list_filter = ("outcome", "error_type")
    search_fields = ("=job__id", "worker_id", "error_type")


# --- workers, schedules, the rest -------------------------------------------------


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "hostname",
        "pid",
        "status",
        "concurrency",
        "jobs_done",
        "jobs_failed",
        "last_heartbeat",
    )
    list_filter = ("status", "hostname")
    search_fields = ("id", "hostname")


class ScheduleForm(forms.ModelForm):
    task_path = forms.ChoiceField(label="Task", choices=task_choices)

    class Meta:
        model = Schedule
        fields = ("name", "cron", "time_zone", "task_path", "args", "kwargs", "queue", "priority", "enabled")
        field_classes = {"args": StorableJSONField, "kwargs": StorableJSONField}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "cron" in data and "time_zone" in data:
            try:
                self.next_run = cron.plan_schedule(data["cron"], data["time_zone"])
            except InvalidJob as exc:
                self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        if not isinstance(data.get("args", []), list):
            self.add_error("args", "args must be a JSON array.")
        if not isinstance(data.get("kwargs", {}), dict):
            self.add_error("kwargs", "kwargs must be a JSON object.")
        return data


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "cron", "task_path", "queue", "enabled", "next_run_at", "last_run_at")
    list_filter = ("enabled", "queue")
    search_fields = ("name", "task_path")
    readonly_fields = ("last_run_at", "next_run_at", "last_job")

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        if not change or {"cron", "time_zone", "enabled"} & set(form.changed_data):
            obj.next_run_at = form.next_run
        super().save_model(request, obj, form, change)


@admin.register(ScheduleRun)
class ScheduleRunAdmin(ReadOnlyAdmin):
    list_display = ("schedule", "due_at", "job", "created_at")
    list_filter = ("schedule",)


@admin.register(Circuit)
class CircuitAdmin(ReadOnlyAdmin):
    list_display = ("task_path", "state", "calls", "failures", "opened_at", "retry_at")
    list_filter = ("state",)
    search_fields = ("task_path",)


@admin.register(RuntimeBucket)
class RuntimeBucketAdmin(ReadOnlyAdmin):
    list_display = ("minute", "queue_name", "task_path", "le", "count")
    list_filter = ("queue_name",)
    search_fields = ("task_path",)


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ("name", "holder", "expires_at")


@admin.register(MinuteStat)
class MinuteStatAdmin(ReadOnlyAdmin):
    list_display = ("minute", "queue_name", "task_path", "enqueued", "succeeded", "failed", "retried", "dead")
    list_filter = ("queue_name",)
    search_fields = ("task_path",)
    date_hierarchy = "minute"


class TokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("name", "user", "scope")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created here (shown once in a message) and revoked, never edited.

    A token acts for its owner, so only a superuser may create one for someone else:
    otherwise anyone allowed to add tokens could borrow a stronger user's rights."""

    form = TokenForm
    list_display = ("name", "prefix", "user", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__username")
    actions = ("revoke",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            owners = db_field.related_model.objects.filter(is_active=True, is_staff=True)
            if not request.user.is_superuser:
                owners = owners.filter(pk=request.user.pk)
            kwargs.update(queryset=owners.order_by("username"), initial=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        new = auth_tokens.create_token(obj.name, user=obj.user, scope=obj.scope)
        obj.pk = new.token.pk
        self.message_user(
            request,
            f"Token {new.plain} — this is the only time it is shown; store it now. It acts for "
            f"{obj.user.get_username()} within the {obj.scope} scope.",
            messages.SUCCESS,
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")
