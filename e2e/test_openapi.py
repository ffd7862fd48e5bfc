"""GET /openapi.json: a valid OpenAPI 3.1 document describing every exported table."""

from __future__ import annotations

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from microlith_e2e import REPO

SCHEMA = """
enum Color { RED GREEN }

type Dimensions {
    width: Float!
    height: Float
    labels: [String]
}

type Maker @table @export(name: "Makers") {
    id: ID @primaryKey
    name: String! @indexed
    widgets: [Widget] @relationship(to: makerId)
}

type Widget @table @export {
    id: ID @primaryKey
    name: String! @indexed
    color: Color
    count: Int
    big: Long
    price: Float @indexed
    ok: Boolean
    when: Date
    blob: Any
    tags: [String] @indexed
    dims: Dimensions
    makerId: ID @indexed
    maker: Maker @relationship(from: makerId)
    created: Long @createdTime
    updated: Date @updatedTime
}

type Locked @table @export @sealed {
    sku: String @primaryKey
    qty: Int!
}

type Numbered @table(database: "other") @export {
    id: Long @primaryKey
    label: String
}

type Internal @table {
    id: ID @primaryKey
    secret: String
}
"""

EXPORTS = {"Makers": "Maker", "Widget": "Widget", "Locked": "Locked", "Numbered": "Numbered"}


@pytest.fixture(scope="module")
def server(module_factory):
    return module_factory.server(module_factory.app(SCHEMA))


@pytest.fixture(scope="module")
def document(server):
    r = server.get("/openapi.json")
    assert r.status_code == 200, r
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["info"]["title"] and document["info"]["version"]


def test_every_exported_table_has_collection_and_record_paths(document):
    paths = document["paths"]
    expected = set()
    for export in EXPORTS:
        expected |= {f"/{export}/", f"/{export}/{{id}}"}
    assert set(paths) == expected
    for export in EXPORTS:
        assert set(paths[f"/{export}/"]) == {"get", "post", "delete"}
        assert set(paths[f"/{export}/{{id}}"]) == {"get", "put", "patch", "delete"}
        params = {p["name"]: p for p in paths[f"/{export}/{{id}}"]["get"]["parameters"]}
        assert params["id"]["in"] == "path" and params["id"]["required"] is True


def test_unexported_table_and_type_names_have_no_paths(document):
    paths = " ".join(document["paths"])
    assert "Internal" not in paths
    assert "/Maker/" not in paths  # exported under its renamed URL only


def test_operation_ids_are_unique(document):
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == 4 * 7


def test_status_codes_documented(document):
    record = document["paths"]["/Widget/{id}"]
    assert {"200", "304", "404"} <= set(record["get"]["responses"])
    assert {"200", "201", "400", "412"} <= set(record["put"]["responses"])
    assert {"200", "400", "404", "412"} <= set(record["patch"]["responses"])
    assert {"204", "404", "412"} <= set(record["delete"]["responses"])
    assert {"201", "400", "413"} <= set(document["paths"]["/Widget/"]["post"]["responses"])
    assert "Location" in record["put"]["responses"]["201"]["headers"]


def test_key_parameter_types_follow_the_primary_key(document):
    def id_schema(export):
        params = document["paths"][f"/{export}/{{id}}"]["get"]["parameters"]
        return next(p for p in params if p["name"] == "id")["schema"]

    assert id_schema("Numbered")["type"] == "integer"
    assert id_schema("Locked")["type"] == "string"


def test_component_schemas_describe_attributes(document):
    schemas = document["components"]["schemas"]
    widget = schemas["Widget"]
    assert widget["type"] == "object"
    assert set(widget["properties"]) == {
        "id", "name", "color", "count", "big", "price", "ok", "when", "blob", "tags", "dims", "makerId", "maker",
        "created", "updated",
    }
    assert widget["required"] == ["name"]
    assert widget["additionalProperties"] is True
    assert "integer" in str(widget["properties"]["count"]["type"])
    assert "number" in str(widget["properties"]["price"]["type"])
    assert "boolean" in str(widget["properties"]["ok"]["type"])
    assert widget["properties"]["when"]["format"] == "date-time"
    assert widget["properties"]["maker"].get("readOnly") is True
    locked = schemas["Locked"]
    assert locked["additionalProperties"] is False
    assert locked["required"] == ["qty"]
    assert "Dimensions" in schemas and schemas["Dimensions"]["required"] == ["width"]
    assert set(schemas["Problem"]["required"]) >= {"title", "status", "detail"}


def test_records_served_fit_the_published_schema(server, document):
    record = {
        "name": "gear", "color": "RED", "count": 3, "big": 2**40, "price": 9.5, "ok": True, "when": "2024-01-02",
        "blob": [1, {"x": None}], "tags": ["a"], "dims": {"width": 2.5, "labels": ["l"]}, "makerId": "m1", "free": "open",
    }
    assert server.put("/Makers/m1", json={"name": "M"}).status_code == 201
    assert server.put("/Widget/w1", json=record).status_code == 201
    assert server.put("/Locked/s1", json={"qty": 2}).status_code == 201
    assert server.put("/Numbered/5", json={"label": "five"}).status_code == 201
    for path, component in [("/Widget/w1", "Widget"), ("/Makers/m1", "Maker"), ("/Locked/s1", "Locked"), ("/Numbered/5", "Numbered")]:
        stored = server.get(path).json()
        schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
        OAS31Validator(schema).validate(stored)
    rows = server.query("Widget", "")
    schema = {**document["paths"]["/Widget/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
              "components": document["components"]}
    OAS31Validator(schema).validate(rows)
    # A problem body fits the Problem schema.
    problem = server.get("/Widget/nope").json()
    OAS31Validator({"$ref": "#/components/schemas/Problem", "components": document["components"]}).validate(problem)


def test_example_app_document_is_valid(factory):
    server = factory.server(REPO / "examples" / "todo")
    document = server.get("/openapi.json").json()
    validate(document, cls=OpenAPIV31SpecValidator)
    assert set(document["paths"]) == {"/Todo/", "/Todo/{id}", "/People/", "/People/{id}"}
