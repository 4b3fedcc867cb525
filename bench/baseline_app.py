"""The web benchmarks' baseline: a minimal Flask + Flask-SQLAlchemy app on the same database.

``GET /items/<id>`` reads one row by primary key; ``POST /items`` parses the JSON body and
inserts one row. No auth, no validation, no broker: the floor for a Flask view that touches
PostgreSQL once. Flask-SQLAlchemy's default engine options (QueuePool 5 + 10 overflow, no
pre-ping). Run as ``gunicorn bench.baseline_app:app`` with ``DATABASE_URL`` set.
"""

from __future__ import annotations

import os

from flask import Flask, abort, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class BaselineItem(db.Model):
    """One row per POST; the GET reads one by primary key."""

    __tablename__ = "bench_baseline_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(db.String(200))
    size: Mapped[int] = mapped_column(default=0)


def create_baseline_app() -> Flask:
    """The baseline app on ``DATABASE_URL`` (psycopg2)."""
    app = Flask(__name__)
    url = os.environ["DATABASE_URL"]
    app.config["SQLALCHEMY_DATABASE_URI"] = url.replace("postgresql://",
                                                        "postgresql+psycopg2://", 1)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "connect_args": {"application_name": "bench-baseline"}}
    db.init_app(app)

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.get("/items/<int:item_id>")
    def get_item(item_id: int):
        item = db.session.get(BaselineItem, item_id)
        if item is None:
            abort(404)
        return jsonify(id=item.id, name=item.name, size=item.size)

    @app.post("/items")
    def create_item():
        body = request.get_json(silent=True) or {}
        item = BaselineItem(name=str(body.get("name", ""))[:200], size=len(body.get("urls", [])))
        db.session.add(item)
        db.session.commit()
        return jsonify(id=item.id, name=item.name, size=item.size), 201

    return app


def init_schema() -> int:
    """Create the baseline table and one row; returns that row's id."""
    app = create_baseline_app()
    with app.app_context():
        db.create_all()
        item = BaselineItem(name="baseline", size=50)
        db.session.add(item)
        db.session.commit()
        item_id = item.id
        db.engine.dispose()
    return item_id


def __getattr__(name: str):
    if name == "app":
        globals()["app"] = create_baseline_app()
        return globals()["app"]
    raise AttributeError(name)
