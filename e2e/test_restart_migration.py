"""Schema changes between restarts: compatible ones migrate and keep the data; incompatible
ones stop start-up with a clear message and change nothing."""

from __future__ import annotations

from microlith_e2e import MicrolithServer, serve_must_fail

V1 = """
type Book @table @export {
    id: ID @primaryKey
    title: String!
    author: String
    year: Int
    tags: [String]
}
"""

# + @indexed on author and tags, + a new table.
V2 = """
type Book @table @export {
    id: ID @primaryKey
    title: String!
    author: String @indexed
    year: Int
    tags: [String] @indexed
}

type Shelf @table @export {
    id: ID @primaryKey
    label: String @indexed
}
"""

BOOKS = [
    {"id": "b1", "title": "Dune", "author": "Herbert", "year": 1965, "tags": ["scifi"]},
    {"id": "b2", "title": "Emma", "author": "Austen", "year": 1815, "tags": ["classic"]},
    {"id": "b3", "title": "Persuasion", "author": "Austen", "year": 1817, "tags": ["classic", "romance"]},
    {"id": "b4", "title": "Untitled"},
]


def books(server) -> dict:
    return {b["id"]: b for b in server.query("Book", "")}


def set_schema(server: MicrolithServer, schema: str):
    (server.app_dir / "schema.graphql").write_text(schema)


def start_v1_with_books(factory) -> MicrolithServer:
    server = factory.server(factory.app(V1))
    for b in BOOKS:
        assert server.put(f"/Book/{b['id']}", json=b).status_code == 201
    assert server.stop() == 0
    return server


def test_adding_a_table_and_an_index_keeps_data_and_indexes_it(factory):
    server = start_v1_with_books(factory)
    # Before: the author query is a flagged full scan.
    server.start()
    r = server.get("/Book/?author=Austen")
    assert r.status_code == 200 and "full scan" in r.headers["Warning"]
    assert server.stop() == 0

    set_schema(server, V2)
    server.start()
    assert books(server) == {b["id"]: b for b in BOOKS}
    r = server.get("/Book/?author=Austen")
    assert r.status_code == 200
    assert sorted(b["id"] for b in r.json()) == ["b2", "b3"]
    assert r.headers.get("Warning") is None, "the new index is not used"
    assert r.headers["Server-Timing"].startswith('query;desc="index')
    r = server.get("/Book/?tags=classic")
    assert sorted(b["id"] for b in r.json()) == ["b2", "b3"] and r.headers.get("Warning") is None
    assert [b["id"] for b in server.query("Book", "author=Herbert")] == ["b1"]
    # Writes after the migration keep the new index up to date.
    assert server.put("/Book/b5", json={"title": "Sanditon", "author": "Austen", "tags": ["classic"]}).status_code == 201
    assert server.patch("/Book/b2", json={"author": "J. Austen"}).status_code == 200
    assert sorted(b["id"] for b in server.query("Book", "author=Austen")) == ["b3", "b5"]
    assert sorted(b["id"] for b in server.query("Book", "tags=classic")) == ["b2", "b3", "b5"]
    # The new table works and is published.
    assert server.put("/Shelf/s1", json={"label": "top"}).status_code == 201
    assert server.query("Shelf", "label=top") == [{"id": "s1", "label": "top"}]
    assert "/Shelf/" in server.get("/openapi.json").json()["paths"]

    # And the whole state survives one more restart.
    server.restart()
    assert sorted(b["id"] for b in server.query("Book", "author=Austen")) == ["b3", "b5"]
    assert server.get("/Shelf/s1").json() == {"id": "s1", "label": "top"}


def test_removing_an_index_keeps_data(factory):
    server = start_v1_with_books(factory)
    set_schema(server, V2)
    server.start()
    server.stop()
    set_schema(server, V1)
    server.start()
    assert books(server) == {b["id"]: b for b in BOOKS}
    r = server.get("/Book/?author=Austen")
    assert sorted(b["id"] for b in r.json()) == ["b2", "b3"]
    assert "full scan" in r.headers["Warning"]


def test_making_an_index_sparse_and_whole_again_keeps_the_answers(factory):
    server = start_v1_with_books(factory)
    sparse = V2.replace("author: String @indexed", "author: String @indexed(sparse: true)")
    set_schema(server, sparse)
    server.start()
    assert books(server) == {b["id"]: b for b in BOOKS}
    # A comparison with a value uses the sparse index; a test for null reads every record, and says so.
    r = server.get("/Book/?author=Austen")
    assert sorted(b["id"] for b in r.json()) == ["b2", "b3"] and r.headers.get("Warning") is None
    r = server.get("/Book/?author=null")
    assert [b["id"] for b in r.json()] == ["b4"] and "full scan" in r.headers["Warning"]
    # A sort keeps the records without an author, first, as a whole index does.
    assert [b["id"] for b in server.query("Book", "sort(+author)&limit(3)")] == ["b4", "b2", "b3"]
    assert server.put("/Book/b6", json={"title": "Anonymous"}).status_code == 201
    assert sorted(b["id"] for b in server.query("Book", "author=null")) == ["b4", "b6"]
    assert server.stop() == 0

    # Whole again: the test for null is answered through the index.
    set_schema(server, V2)
    server.start()
    r = server.get("/Book/?author=null")
    assert sorted(b["id"] for b in r.json()) == ["b4", "b6"] and r.headers.get("Warning") is None
    assert [b["id"] for b in server.query("Book", "sort(+author)&limit(3)")] == ["b4", "b6", "b2"]


def test_new_optional_attribute_is_compatible(factory):
    server = start_v1_with_books(factory)
    set_schema(server, V1.replace("tags: [String]", "tags: [String]\n    pages: Int @indexed"))
    server.start()
    assert books(server)["b1"] == BOOKS[0]
    assert server.patch("/Book/b1", json={"pages": 412}).status_code == 200
    assert [b["id"] for b in server.query("Book", "pages=gt=400")] == ["b1"]


def assert_refused(server: MicrolithServer, *fragments: str):
    result = serve_must_fail(server.app_dir, server.data_dir)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") or "\nerror: " in result.stderr, result.stderr
    return result


def test_primary_key_type_change_is_refused(factory):
    server = start_v1_with_books(factory)
    set_schema(server, V1.replace("id: ID @primaryKey", "id: Int @primaryKey"))
    assert_refused(server, "table Book", "primary key changed from id:ID to id:Int")
    # Nothing was changed: the old schema still opens the data as it was.
    set_schema(server, V1)
    server.start()
    assert books(server) == {b["id"]: b for b in BOOKS}


def test_primary_key_attribute_change_is_refused(factory):
    server = start_v1_with_books(factory)
    set_schema(server, V1.replace("id: ID @primaryKey", "id: ID\n    isbn: String @primaryKey"))
    assert_refused(server, "table Book", "primary key changed from id:ID to isbn:String")


def test_type_change_that_existing_records_do_not_fit_is_refused(factory):
    server = start_v1_with_books(factory)
    set_schema(server, V1.replace("year: Int", "year: String"))
    result = assert_refused(server, "table Book", "does not fit the new schema", "'year'")
    assert "record b1" in result.stderr or "record b2" in result.stderr or "record b3" in result.stderr
    set_schema(server, V1)
    server.start()
    assert books(server) == {b["id"]: b for b in BOOKS}


def test_new_required_attribute_missing_from_records_is_refused(factory):
    server = start_v1_with_books(factory)
    set_schema(server, V1.replace("year: Int", "year: Int\n    isbn: String!"))
    assert_refused(server, "table Book", "'isbn'", "required")


def test_sealing_a_table_with_extra_attributes_is_refused(factory):
    server = factory.server(factory.app(V1))
    assert server.put("/Book/x", json={"title": "T", "extra": 1}).status_code == 201
    server.stop()
    set_schema(server, V1.replace("type Book @table @export", "type Book @table @export @sealed"))
    assert_refused(server, "table Book", "'extra'")
    set_schema(server, V1)
    server.start()
    assert server.get("/Book/x").json() == {"id": "x", "title": "T", "extra": 1}


def test_compatible_type_widening_is_accepted(factory):
    server = start_v1_with_books(factory)
    set_schema(server, V1.replace("year: Int", "year: Long").replace("author: String", "author: Any"))
    server.start()
    assert books(server) == {b["id"]: b for b in BOOKS}
    assert [b["id"] for b in server.query("Book", "year=1965")] == ["b1"]


def test_table_left_out_of_the_schema_keeps_its_data(factory):
    server = factory.server(factory.app(V2))
    assert server.put("/Shelf/s1", json={"label": "top"}).status_code == 201
    assert server.put("/Book/b1", json=BOOKS[0]).status_code == 201
    server.stop()
    set_schema(server, V1)  # no Shelf
    server.start()
    assert server.get("/Shelf/s1").status_code == 404
    assert server.get("/Book/b1").json() == BOOKS[0]
    server.stop()
    set_schema(server, V2)  # Shelf is back, with its data
    server.start()
    assert server.get("/Shelf/s1").json() == {"id": "s1", "label": "top"}
    assert server.query("Shelf", "label=top") == [{"id": "s1", "label": "top"}]


def test_renamed_export_serves_the_same_data(factory):
    server = start_v1_with_books(factory)
    set_schema(server, V1.replace("type Book @table @export", 'type Book @table @export(name: "Books")'))
    server.start()
    assert server.get("/Books/b1").json() == BOOKS[0]
    assert server.get("/Book/b1").status_code == 404
