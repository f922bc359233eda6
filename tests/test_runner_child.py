"""One attempt run in-process, as a worker's child runs it: what its report says."""

from __future__ import annotations

import pytest

from queues.compat import TaskError
from queues.exceptions import ResultNotSerialisable, TaskImportError
from queues.runner.child import Assignment, Report, run
from queues.values import ClaimedJob


def attempt(task_path: str, *args: object) -> Report:
    job = ClaimedJob(
        id=1,
        task_path=task_path,
        args=list(args),
        kwargs={},
        attempt=1,
        attempt_offset=0,
        max_attempts=1,
        timeout=60,
        queue_name="default",
    )
    return run(Assignment(job, worker_id="w"))


def exception_class(report: Report) -> type[BaseException]:
    return TaskError(exception_class_path=report.error_type, traceback=report.traceback).exception_class


@pytest.mark.parametrize(
    ("how", "kind"),
    [
        ("exit()", SystemExit),
        ("SystemExit", SystemExit),
        ("KeyboardInterrupt", KeyboardInterrupt),
        ("GeneratorExit", GeneratorExit),
    ],
)
def test_a_base_exception_fails_the_attempt_with_its_own_class_and_traceback(how, kind):
    report = attempt("tests.tasks.stop_process", how)
    assert not report.ok and report.retryable
    assert exception_class(report) is kind
    assert f"{kind.__name__}" in report.traceback and "stop_process" in report.traceback


def test_a_return_value_is_normalised_as_the_tasks_api_normalises_it():
    assert attempt("tests.tasks.returns_bytes_and_a_tuple").result_json == '["text", [1, 2]]'


def test_a_return_value_that_is_not_json_fails_as_result_not_serialisable():
    report = attempt("tests.tasks.returns_unserialisable")
    assert (report.ok, report.retryable, exception_class(report)) == (False, False, ResultNotSerialisable)
    assert "Unsupported type" in report.traceback


def test_a_return_value_no_database_can_store_fails_as_result_not_serialisable():
    report = attempt("tests.tasks.returns_text_with_a_nul")
    assert (report.ok, exception_class(report)) == (False, ResultNotSerialisable)
    assert "NUL characters" in report.error_message


def test_a_task_that_does_not_import_fails_as_task_import_error():
    report = attempt("tests.tasks.removed_in_a_later_deploy")
    assert (report.ok, report.retryable, exception_class(report)) == (False, False, TaskImportError)
