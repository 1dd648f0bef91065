"""Every built-in tool checks its options when the program is built, naming the problem."""

from __future__ import annotations

import pytest

from conveyor_sgl.tools.registry import check_tool

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


@pytest.mark.parametrize(
    ("tool", "config", "message"),
    [
        ("python", {"max_output_byte": 10}, r"unknown option\(s\) \['max_output_byte'\]"),
        ("search", {"topk": 3}, r"unknown option\(s\) \['topk'\]; known: \['concurrency'"),
        ("search", {"top_k": 0}, "top_k must be a positive integer, got 0"),
        ("search", {"delay_ms": "slow"}, "delay_ms must be a number >= 0, got 'slow'"),
        ("search", {"service_url": "ftp://x"}, "service_url must be an http"),
        ("planner", {"concurrency": 0}, "concurrency must be a positive integer, got 0"),
        ("planner", {"timeout_s": -1}, "timeout_s must be a positive number, got -1"),
        ("planner", {"search": {"top_k": -2}}, "search: top_k must be a positive integer, got -2"),
        ("planner", {"python": {"x": 1}}, r"python: unknown option\(s\) \['x'\]"),
        ("planner", {"search": "fast"}, "search must be a mapping of search options"),
        ("sql", {"max_rows": "all"}, "max_rows must be an integer >= 0, got 'all'"),
        ("sql", {"database": ""}, "database must be a path or ':memory:'"),
        ("sql", {"setup": 42}, "setup must be an SQL script"),
        ("sql", {"db": "x.sqlite"}, r"unknown option\(s\) \['db'\]"),
        ("calculator", {"precision": 0}, "precision must be a positive integer, got 0"),
        ("calculator", {"digits": 3}, r"unknown option\(s\) \['digits'\]"),
        ("validation", {}, r"validation needs config\['schema'\]"),
        ("validation", {"schema": SCHEMA, "function": "nocolon"}, "module:callable"),
        ("validation", {"schema": SCHEMA, "strict": True}, r"unknown option\(s\) \['strict'\]"),
    ],
)
def test_a_bad_option_fails_at_build_time_naming_it(tool, config, message):
    with pytest.raises(ValueError, match=rf"tool '{tool}': bad config: .*{message}"):
        check_tool(tool, config)


@pytest.mark.parametrize(
    ("tool", "config"),
    [
        ("python", {"max_output_bytes": 4096}),
        ("search", {"delay_ms": 200, "top_k": 2, "service_url": "http://127.0.0.1:1"}),
        ("planner", {"search": {"delay_ms": 100}, "python": {}, "concurrency": 2}),
        ("sql", {"database": ":memory:", "max_rows": 5, "setup": "CREATE TABLE t (x)"}),
        ("calculator", {"precision": 6}),
        ("validation", {"schema": SCHEMA, "function": "json:dumps"}),
    ],
)
def test_good_options_pass_without_side_effects(tool, config):
    check_tool(tool, config)  # no service is contacted, no database opened, nothing imported
