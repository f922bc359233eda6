"""The live sockets' re-check: one pass over every socket of a process, two queries in all."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from queues.console.access import Viewer, refused

from .console_helpers import make_operator, make_user, make_viewer, session_cookie

pytestmark = pytest.mark.django_db


def _viewer(user) -> Viewer:
    return Viewer(user.pk, session_cookie(user))


def test_users_who_may_still_watch_are_not_refused():
    viewers = {"a": _viewer(make_viewer()), "b": _viewer(make_operator())}
    assert refused(viewers) == set()


def test_a_user_who_may_view_through_a_group_is_not_refused():
    group = Group.objects.create(name="watchers")
    group.permissions.add(Permission.objects.get(codename="view_job"))
    user = make_user("member")
    user.groups.add(group)
    assert refused({"a": _viewer(user)}) == set()


def test_a_session_that_names_another_user_is_refused():
    viewer, other = make_viewer(), make_viewer("other")
    assert refused({"a": Viewer(viewer.pk, session_cookie(other))}) == {"a"}


def test_checking_any_number_of_sockets_takes_two_queries(django_assert_num_queries):
    users = [make_viewer(f"viewer{n}") for n in range(3)] + [make_operator()]
    viewers = {f"socket{n}": _viewer(users[n % len(users)]) for n in range(12)}
    with django_assert_num_queries(2):
        assert refused(viewers) == set()
