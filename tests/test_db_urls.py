"""The database URL `db copy` tells to set on every machine: the password left out, nothing else changed."""

from __future__ import annotations

import pytest

from statusctl.domain.urls import db_url_without_password


@pytest.mark.parametrize(("given", "shared"), [
    ("postgresql://app:s3cret@db.example:5432/shop", "postgresql://app@db.example:5432/shop"),
    ("postgresql://app@db.example/shop", "postgresql://app@db.example/shop"),
    ("postgres://db.example/shop", "postgres://db.example/shop"),
    ("postgresql://app:s3cr@t!pw@db.example/shop", "postgresql://app@db.example/shop"),
    ("postgresql://app@db.example/shop?password=s3cret&sslmode=require", "postgresql://app@db.example/shop?sslmode=require"),
    ("postgresql://app@db.example/shop?sslmode=require&PASSWORD=s3cret", "postgresql://app@db.example/shop?sslmode=require"),
    ("postgresql://app@db.example/shop?sslpassword=k3y&sslkey=/etc/app.key",
     "postgresql://app@db.example/shop?sslkey=/etc/app.key"),
    ("postgresql://app:x@db.example/shop?password=y", "postgresql://app@db.example/shop"),
    ("postgresql://app@/shop?host=%2Fvar%2Frun%2Fpostgresql", "postgresql://app@/shop?host=%2Fvar%2Frun%2Fpostgresql"),
    ("postgresql://app:pw@h1:5432,h2:5433/shop?target_session_attrs=read-write",
     "postgresql://app@h1:5432,h2:5433/shop?target_session_attrs=read-write"),
])
def test_the_shared_url_leaves_the_password_out(given: str, shared: str) -> None:
    assert db_url_without_password(given) == shared
