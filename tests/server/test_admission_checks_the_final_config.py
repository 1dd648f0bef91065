"""Admission checks the config the worker will get, the server's own settings included."""

from __future__ import annotations

import pytest

from conveyor_sgl.runtime.server.admission import PolicyError, admit
from conveyor_sgl.runtime.server.policy import ServerPolicy


def test_a_setup_script_is_checked_against_the_servers_files_root(tmp_path):
    policy = ServerPolicy(files_root=str(tmp_path))
    head, tail = str(tmp_path / "x")[:4], str(tmp_path / "x")[4:]
    with pytest.raises(PolicyError) as refused:
        admit(policy, "sql", {"setup": f"ATTACH '{head}' || '{tail}.db' AS o;"}, None)
    assert refused.value.status == 400 and "plain string literal" in str(refused.value)
    # Without a files root the server allows no file at all: the literal is refused too.
    with pytest.raises(PolicyError):
        admit(ServerPolicy(), "sql", {"setup": f"ATTACH '{tmp_path / 'x.db'}' AS o;"}, None)
    setup = f"ATTACH '{tmp_path / 'in.db'}' AS o;"
    inside = admit(policy, "sql", {"setup": setup, "database": "main.db"}, None)
    assert inside.checked.config["files_root"] == str(tmp_path.resolve())
    assert list(tmp_path.iterdir()) == []  # nothing opened or created by admission
