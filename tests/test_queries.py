"""Queries run on the driver's cursor (``service.database.Query``) give what SQLAlchemy's execution gives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError, ProgrammingError

from service.database import KeyLookup, Query, UTCDateTime, configure_engine, insert_rows
from tests.conftest import PostgresDatabases

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("tags", JSON, nullable=True),
    Column("flag", Boolean, nullable=False),
    Column("seen_at", UTCDateTime, nullable=True),
    Column("count", Integer, nullable=False),
)
defaults = Table(
    "defaults",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(16), nullable=False, default="pending"),
    Column("items", JSON, nullable=False, default=list),
    Column("made_at", UTCDateTime, nullable=False, default=lambda: AT),
    Column("note", String(32), nullable=False, server_default="from the database"),
)
AT = dt.datetime(2026, 11, 30, 21, 0, 5, 123456, tzinfo=dt.UTC)
ROWS = [
    {"id": "a", "kind": "x", "tags": ["NL", "DE"], "flag": True, "seen_at": AT, "count": 1},
    {"id": "b", "kind": "x", "tags": None, "flag": False, "seen_at": None, "count": 2},
    {"id": "c", "kind": "y", "tags": {"k": [1, 2]}, "flag": True, "seen_at": AT, "count": 3},
]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    postgres = PostgresDatabases()
    url = f"sqlite:///{tmp_path / 'queries.db'}" if request.param == "sqlite" else postgres.create("queries")
    made = create_engine(url)
    configure_engine(made)
    metadata.create_all(made)
    with made.begin() as connection:
        connection.execute(insert(things), ROWS)
    yield made
    made.dispose()
    postgres.drop_all()


def test_rows_are_those_sqlalchemy_returns_with_every_type_processed(engine: Engine) -> None:
    statement = select(things).where(things.c.kind == bindparam("kind")).order_by(things.c.id)
    query = Query(statement)
    with engine.begin() as connection:
        expected = [tuple(row) for row in connection.execute(statement, {"kind": "x"})]
        got = query.rows(connection, {"kind": "x"})
    assert got == expected
    assert got[0] == ("a", "x", ["NL", "DE"], True, AT, 1)
    assert got[0][4].tzinfo is dt.UTC  # Aware UTC, as UTCDateTime promises, on SQLite too.
    assert got[1] == ("b", "x", None, False, None, 2)


def test_bound_values_are_processed_and_constants_kept(engine: Engine) -> None:
    # A timestamp parameter goes through UTCDateTime's bind processing; "y" is a constant of the statement.
    query = Query(
        select(things.c.id).where(things.c.seen_at == bindparam("at", type_=UTCDateTime), things.c.kind == "y")
    )
    other_zone = AT.astimezone(dt.timezone(dt.timedelta(hours=2)))
    with engine.begin() as connection:
        assert query.rows(connection, {"at": other_zone}) == [("c",)]
        assert query.scalar(connection, {"at": AT + dt.timedelta(seconds=1)}) is None
        assert query.first(connection, {"at": AT}) == ("c",)


def test_reads_see_the_transactions_own_writes_and_roll_back_with_it(engine: Engine) -> None:
    query = Query(select(things.c.count).where(things.c.id == bindparam("id")))
    with engine.connect() as connection:
        with connection.begin() as transaction:
            connection.execute(insert(things), [{**ROWS[1], "id": "d", "count": 9}])
            assert query.scalar(connection, {"id": "d"}) == 9
            transaction.rollback()
        with connection.begin():
            assert query.scalar(connection, {"id": "d"}) is None


def test_read_alone_uses_no_transaction_of_the_callers(engine: Engine) -> None:
    query = Query(select(things.c.kind).where(things.c.id == bindparam("id")))
    assert query.read_alone(engine, {"id": "a"}) == [("x",)]
    assert query.read_alone(engine, {"id": "zz"}) == []
    # Another connection writes and commits meanwhile: the next read sees it (nothing was left open).
    with engine.begin() as connection:
        connection.execute(things.update().where(things.c.id == "a").values(kind="z"))
    assert query.read_alone(engine, {"id": "a"}) == [("z",)]
    assert engine.pool.checkedout() == 0


def test_driver_errors_come_out_as_sqlalchemys(engine: Engine) -> None:
    query = Query(select(things.c.id).where(things.c.id == bindparam("id")))
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE things")
        with pytest.raises(DBAPIError) as caught:
            query.rows(connection, {"id": "a"})
        assert isinstance(caught.value, ProgrammingError) or "no such table" in str(caught.value)
        connection.rollback()


def test_a_missing_value_is_refused_not_read_as_null(engine: Engine) -> None:
    query = Query(select(things.c.id).where(things.c.id == bindparam("id"), things.c.kind == bindparam("kind")))
    with engine.begin() as connection, pytest.raises(InvalidRequestError, match="kind"):
        query.rows(connection, {"id": "a"})


def test_an_in_list_is_refused_at_first_use(engine: Engine) -> None:
    query = Query(select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True))))
    with engine.begin() as connection, pytest.raises(ValueError, match="expanding"):
        query.rows(connection, {"ids": ["a"]})


def test_key_lookups_answer_alike_for_one_key_and_for_many(engine: Engine) -> None:
    by_id = KeyLookup((things.c.id, things.c.tags), things.c.id)
    by_pair = KeyLookup((things.c.id, things.c.count), things.c.kind, things.c.id)
    with engine.begin() as connection:
        assert by_id(connection, ["a"]) == [("a", ["NL", "DE"])]
        assert sorted(by_id(connection, ["a", "c", "nope"])) == [("a", ["NL", "DE"]), ("c", {"k": [1, 2]})]
        assert by_pair(connection, [("y", "c")]) == [("c", 3)]
        assert sorted(by_pair(connection, [("x", "a"), ("x", "c"), ("y", "c")])) == [("a", 1), ("c", 3)]


def test_inserted_rows_read_back_as_sqlalchemys_inserts_do(engine: Engine) -> None:
    later = AT + dt.timedelta(days=1)
    rows = [
        {"id": "d", "kind": "z", "tags": {"a": 1}, "flag": True, "seen_at": later, "count": 4},
        {"id": "e", "kind": "z", "tags": None, "flag": False, "seen_at": None, "count": 5},
    ]
    with engine.begin() as connection:
        insert_rows(connection, things, rows)
    with engine.begin() as connection:
        got = [tuple(row) for row in connection.execute(select(things).where(things.c.kind == "z").order_by("id"))]
    assert got == [tuple(row.values()) for row in rows]


def test_python_side_defaults_are_filled_and_server_defaults_left_to_the_database(engine: Engine) -> None:
    with engine.begin() as connection:
        insert_rows(connection, defaults, [{"state": "sent"}, {"state": "held"}])
        insert_rows(connection, defaults, [{"items": ["x"]}])
    with engine.begin() as connection:
        got = [tuple(row)[1:] for row in connection.execute(select(defaults).order_by(defaults.c.id))]
    assert got == [
        ("sent", [], AT, "from the database"),
        ("held", [], AT, "from the database"),
        ("pending", ["x"], AT, "from the database"),
    ]


def test_a_conflicting_insert_is_sqlalchemys_integrity_error_and_nothing_of_it_stays(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        insert_rows(connection, things, [{**ROWS[0], "id": "new"}, {**ROWS[0], "id": "a"}])
    with engine.begin() as connection:
        assert connection.execute(select(things.c.id).where(things.c.id == "new")).first() is None


def test_an_update_reports_the_rows_it_matched(engine: Engine) -> None:
    bump = Query(things.update().where(things.c.kind == bindparam("k")).values(count=things.c.count + 10))
    with engine.begin() as connection:
        assert bump.run(connection, {"k": "x"}) == 2
        assert bump.run(connection, {"k": "nothing"}) == 0
        assert sorted(connection.execute(select(things.c.count)).scalars()) == [3, 11, 12]
