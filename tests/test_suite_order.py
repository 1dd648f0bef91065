"""How the suite itself is run (tests/conftest.py): each session server's tests in one xdist
group, those groups first, and one rerun, only for a test marked timing."""

from __future__ import annotations

import pytest
from conftest import FIRST_GROUPS, _group


def test_the_servers_groups_come_first_then_the_files_that_start_a_server(request):
    items = request.session.items
    starts_a_server = {_group(i) for i in items if i.get_closest_marker("server") is not None}
    ranks = []
    for item in items:
        group = _group(item)
        first = FIRST_GROUPS.index(group) if group in FIRST_GROUPS else len(FIRST_GROUPS)
        ranks.append(first + (group not in FIRST_GROUPS and group not in starts_a_server))
    assert ranks == sorted(ranks)
    # Every test of a session server is in its group, wherever its file is.
    flagged = [i for i in items if "flagged_server" in i.fixturenames]
    assert {_group(i) for i in flagged} <= {"flagged-server", "eval-on-flagged-server"}


@pytest.mark.timing
def test_a_timing_test_gets_one_rerun(request):
    assert request.config.pluginmanager.hasplugin("rerunfailures")
    assert request.node.get_closest_marker("flaky").kwargs == {"reruns": 1}


def test_any_other_test_gets_none(request):
    assert request.node.get_closest_marker("flaky") is None
