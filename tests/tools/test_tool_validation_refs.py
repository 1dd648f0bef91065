"""The validation tool never retrieves a schema ``$ref``: a reference to ``http(s)://``,
``file://`` or any URI outside the schema is refused when the config is checked (a clear
``SchemaReferenceError``, a ``ConveyorError``) and, should one be met while validating, it
is an error result, never a fetch. Local ``#/definitions``, ``$defs``, anchors and embedded
``$id`` references keep working."""

from __future__ import annotations

import http.server
import json
import threading
import warnings

import jsonschema
import pytest
from tool_drive import drive

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.tools import validation
from conveyor_sgl.tools.registry import check_tool
from conveyor_sgl.tools.validation import FieldValidator, SchemaReferenceError, ValidationTool

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-file-contents-never-shown"
REFUSED = "remote and file references are not allowed"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Serves a schema for any path and records each request."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = json.dumps({"type": "string", "description": SECRET}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def url(recorder):
    host, port = recorder.server_address[:2]
    return f"http://{host}:{port}"


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.json"
    path.write_text(json.dumps({"type": "string", "description": SECRET}))
    return path


def _remote_schemas(url: str, file_uri: str) -> list[dict]:
    return [
        {"properties": {"a": {"$ref": f"{url}/a.json"}}},
        {"properties": {"a": {"$ref": f"{url}/a.json#/definitions/x"}}},
        {"properties": {"a": {"$ref": file_uri}}},
        {"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"$ref": f"{url}/x"}}},
        {"properties": {"a": {"items": {"anyOf": [{"$ref": f"{url}/deep"}]}}}},
        {"$id": f"{url}/root.json", "properties": {"a": {"$ref": "other.json"}}},
        {"$id": "http://example.invalid/r.json", "properties": {"a": {"$ref": f"{url}/o"}}},
        {"properties": {"a": {"$ref": "relative/file.json"}}},
        {"properties": {"a": {"$dynamicRef": f"{url}/dyn"}}},
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"a": {"$ref": f"{url}/draft7"}},
        },
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "properties": {"a": {"$ref": file_uri}},
        },
        {"additionalProperties": {"$ref": f"{url}/additional"}},
        {"properties": {"a": {"not": {"$ref": f"{url}/not"}}}},
    ]


def test_the_server_would_be_fetched_by_jsonschemas_default(url, recorder):
    # The control: without the tool's registry, jsonschema retrieves the reference.
    schema = {"properties": {"a": {"$ref": f"{url}/control.json"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert not jsonschema.Draft202012Validator(schema).is_valid({"a": 1})
    assert recorder.hits == ["/control.json"]


def test_remote_and_file_references_are_refused_and_never_fetched(
    url, recorder, secret_file, tmp_path
):
    for schema in _remote_schemas(url, secret_file.as_uri()):
        with pytest.raises(SchemaReferenceError) as refused:
            FieldValidator(schema)
        error = refused.value
        assert isinstance(error, ConveyorError) and isinstance(error, ValueError)
        assert REFUSED in str(error) and "$defs" in str(error), schema
        assert SECRET not in str(error)
        with pytest.raises(SchemaReferenceError):
            ValidationTool.check_config({"schema": schema})
        with pytest.raises(SchemaReferenceError):
            ValidationTool().start({"schema": schema})
    assert recorder.hits == []


def test_the_error_names_the_reference_and_the_uri(url, secret_file):
    with pytest.raises(SchemaReferenceError) as refused:
        FieldValidator({"properties": {"a": {"$ref": f"{url}/a.json"}}})
    assert str(refused.value).startswith(f"schema $ref '{url}/a.json': {REFUSED}: {url}/a.json")
    with pytest.raises(SchemaReferenceError, match=REFUSED) as refused:
        FieldValidator({"properties": {"a": {"$ref": secret_file.as_uri()}}})
    assert secret_file.as_uri() in str(refused.value) and SECRET not in str(refused.value)


def test_a_bad_config_through_the_registry_is_a_clear_error(url, recorder):
    schema = {"properties": {"a": {"$ref": f"{url}/a.json"}}}
    with pytest.raises(ValueError, match=f"tool 'validation': bad config: .*{REFUSED}"):
        check_tool("validation", {"schema": schema})
    assert recorder.hits == []


def test_a_reference_met_while_validating_is_an_error_result(
    monkeypatch, url, recorder, secret_file
):
    # The second check: were the config check skipped, validation still retrieves nothing.
    monkeypatch.setattr(validation, "check_references", lambda *_: None)
    for ref in (f"{url}/late.json", secret_file.as_uri()):
        schema = {"properties": {"a": {"$ref": ref}}, "required": ["a"]}
        driven = drive(ValidationTool, '{"a": 1}', {"schema": schema})
        assert driven.out.status == "aborted"
        assert driven.abort.startswith("invalid schema for argument 'a': " + REFUSED)
        assert SECRET not in driven.abort
        whole = FieldValidator({"allOf": [{"$ref": ref}]}).whole_error({"a": 1})
        assert whole is not None and whole.startswith(f"invalid schema: {REFUSED}: {ref}")
        assert SECRET not in whole
    assert recorder.hits == []


def test_a_pointer_to_nothing_is_refused_at_config():
    with pytest.raises(SchemaReferenceError, match="points to nothing in the schema"):
        FieldValidator({"properties": {"a": {"$ref": "#/$defs/missing"}}})
    with pytest.raises(SchemaReferenceError, match="has no anchor"):
        FieldValidator({"properties": {"a": {"$ref": "#nowhere"}}})


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": {"$ref": "#/$defs/s"}}, "$defs": {"s": {"type": "string"}}},
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"a": {"$ref": "#/definitions/s"}},
            "definitions": {"s": {"type": "string"}},
        },
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "id": "http://example.invalid/root.json",
            "properties": {"a": {"$ref": "#/definitions/s"}},
            "definitions": {"s": {"type": "string"}},
        },
        {"properties": {"a": {"$ref": "#s"}}, "$defs": {"x": {"$anchor": "s", "type": "string"}}},
        {
            "$id": "http://example.invalid/root.json",
            "properties": {"a": {"$ref": "item.json"}},
            "$defs": {"item": {"$id": "item.json", "type": "string"}},
        },
        {
            "$id": "http://example.invalid/root.json",
            "properties": {"a": {"$ref": "http://example.invalid/root.json#/$defs/s"}},
            "$defs": {"s": {"type": "string"}},
        },
    ],
)
def test_local_references_keep_working(schema):
    tool = ValidationTool
    tool.check_config({"schema": schema})
    assert drive(tool, '{"a": "x"}', {"schema": schema}).out.status == "ok"
    refused = drive(tool, '{"a": 1}', {"schema": schema})
    assert refused.out.status == "aborted"
    assert refused.abort == "invalid argument 'a': 1 is not of type 'string'"


def test_a_recursive_local_schema_keeps_working():
    tree = {
        "type": "object",
        "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#"}},
        },
    }
    schema = {"properties": {"tree": {"$ref": "#/$defs/tree"}}, "$defs": {"tree": tree}}
    good = '{"tree": {"value": 1, "children": [{"value": 2, "children": []}]}}'
    assert drive(ValidationTool, good, {"schema": schema}).out.status == "ok"


def test_a_reference_to_a_bundled_meta_schema_resolves_without_a_fetch():
    schema = {"properties": {"a": {"$ref": "https://json-schema.org/draft/2020-12/schema"}}}
    FieldValidator(schema)  # shipped with jsonschema: nothing is retrieved


def test_an_invalid_schema_is_a_config_error():
    with pytest.raises(ConveyorError, match="schema is not a valid JSON Schema"):
        FieldValidator({"type": "nonsense"})


def test_a_schema_nested_too_deeply_is_a_config_error_not_a_crash():
    schema: dict = {"type": "string"}
    for _ in range(5000):
        schema = {"items": schema}
    with pytest.raises(ConveyorError, match="nested too deeply"):
        FieldValidator(schema)


def test_a_reference_cycle_is_an_error_result_not_a_crash():
    schema = {"properties": {"a": {"$ref": "#/properties/a"}}}
    driven = drive(ValidationTool, '{"a": 1}', {"schema": schema})
    assert driven.out.status == "aborted"
    assert driven.abort == "invalid schema for argument 'a': its references recurse without end"
