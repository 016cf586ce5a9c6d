"""The database URL `db copy` tells to set on every machine: the password left out, nothing else changed."""

from __future__ import annotations

import pytest

from statusctl.domain.urls import db_url_to_share


@pytest.mark.parametrize(("given", "shared", "left_out"), [
    ("postgresql://app:s3cret@db.example:5432/shop", "postgresql://app@db.example:5432/shop", ["password"]),
    ("postgresql://app@db.example/shop", "postgresql://app@db.example/shop", []),
    ("postgres://db.example/shop", "postgres://db.example/shop", []),
    ("postgresql://app:s3cr@t!pw@db.example/shop", "postgresql://app@db.example/shop", ["password"]),
    ("postgresql://app@db.example/shop?password=s3cret&sslmode=require", "postgresql://app@db.example/shop?sslmode=require",
     ["password"]),
    ("postgresql://app@db.example/shop?sslmode=require&PASSWORD=s3cret", "postgresql://app@db.example/shop?sslmode=require",
     ["password"]),
    ("postgresql://app@db.example/shop?sslpassword=k3y&sslkey=/etc/app.key&sslcert=/etc/app.crt",
     "postgresql://app@db.example/shop?sslkey=/etc/app.key&sslcert=/etc/app.crt", ["sslpassword"]),
    ("postgresql://app:x@db.example/shop?password=y", "postgresql://app@db.example/shop", ["password"]),
    ("postgresql://app@db/shop?oauth_issuer=https://id.example&oauth_client_id=statusctl&oauth_client_secret=S3CRET",
     "postgresql://app@db/shop?oauth_issuer=https://id.example&oauth_client_id=statusctl", ["oauth_client_secret"]),
    ("postgresql://app@db/shop?require_auth=scram-sha-256&passfile=/etc/pgpass",
     "postgresql://app@db/shop?require_auth=scram-sha-256&passfile=/etc/pgpass", []),
    ("postgresql://app@/shop?host=%2Fvar%2Frun%2Fpostgresql", "postgresql://app@/shop?host=%2Fvar%2Frun%2Fpostgresql", []),
    ("postgresql://app:pw@h1:5432,h2:5433/shop?target_session_attrs=read-write",
     "postgresql://app@h1:5432,h2:5433/shop?target_session_attrs=read-write", ["password"]),
])
def test_the_shared_url_leaves_every_secret_out(given: str, shared: str, left_out: list[str]) -> None:
    assert db_url_to_share(given) == (shared, left_out)
