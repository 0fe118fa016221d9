"""Which services `make run` runs, and where the services find the stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.stack import StackSettings, exchange_specs, summary


def test_without_store_urls_postgres_and_redis_run_locally_first(tmp_path: Path) -> None:
    settings = StackSettings.from_env({}, cwd=tmp_path)
    specs = exchange_specs(settings)

    names = ["postgres", "redis", "engine", "ledger", "publisher", "stream", "gateway"]
    assert [spec.name for spec in specs] == [*names, "mm", "flow"]
    assert settings.database_url == "postgresql://postgres@127.0.0.1:55432/exchange"
    assert settings.redis_url == "redis://127.0.0.1:56379/0"
    postgres, redis, _, ledger, publisher, stream, gateway, _, _ = specs
    assert gateway.env["REDIS_URL"] == settings.redis_url
    assert gateway.env["STREAM_ADDRESS"] == "127.0.0.1:50053"
    assert publisher.env["REDIS_URL"] == stream.env["REDIS_URL"] == settings.redis_url
    assert len(gateway.env["GATEWAY_TOKEN_SECRET"]) >= 32
    assert ledger.env["DATABASE_URL"] == settings.database_url
    assert ledger.env["ENGINE_ADDRESS"] == "127.0.0.1:50051"
    assert str(tmp_path / ".run" / "postgres") in postgres.argv
    assert str(tmp_path / ".run" / "redis") in redis.argv
    assert summary(settings, specs).splitlines() == [
        "postgres   postgresql://postgres@127.0.0.1:55432/exchange",
        "redis      redis://127.0.0.1:56379/0",
        "engine     grpc 127.0.0.1:50051",
        "ledger     grpc 127.0.0.1:50052",
        "publisher  grpc 127.0.0.1:50054",
        "stream     grpc 127.0.0.1:50053",
        "gateway    http http://127.0.0.1:8080",
        "mm         grpc 127.0.0.1:50061",
        "flow       grpc 127.0.0.1:50062",
    ]


def test_local_store_ports_and_folders_come_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "POSTGRES_PORT": "6543",
        "POSTGRES_DATA_DIR": "pg",
        "REDIS_PORT": "7379",
        "REDIS_DATA_DIR": "/srv/redis",
    }
    settings = StackSettings.from_env(environ, cwd=tmp_path)

    assert settings.database_url == "postgresql://postgres@127.0.0.1:6543/exchange"
    assert settings.redis_url == "redis://127.0.0.1:7379/0"
    assert settings.postgres_data_dir == tmp_path / "pg"
    assert settings.redis_data_dir == Path("/srv/redis")


def test_store_urls_given_are_used_and_nothing_is_run_for_them(tmp_path: Path) -> None:
    environ = {
        "DATABASE_URL": "postgresql://ledger:s3cret@db.internal:5432/exchange",
        "REDIS_URL": "redis://cache.internal:6379/2",
    }
    settings = StackSettings.from_env(environ, cwd=tmp_path)
    specs = exchange_specs(settings)

    assert [spec.name for spec in specs] == [
        "engine", "ledger", "publisher", "stream", "gateway", "mm", "flow"
    ]  # fmt: skip
    assert specs[1].env["DATABASE_URL"] == environ["DATABASE_URL"]
    assert settings.local_postgres is None
    assert settings.local_redis is None
    assert settings.database_url == environ["DATABASE_URL"]
    assert settings.redis_url == environ["REDIS_URL"]
    assert summary(settings, specs).splitlines() == [
        "postgres   postgresql://ledger:***@db.internal:5432/exchange (external)",
        "redis      redis://cache.internal:6379/2 (external)",
        "engine     grpc 127.0.0.1:50051",
        "ledger     grpc 127.0.0.1:50052",
        "publisher  grpc 127.0.0.1:50054",
        "stream     grpc 127.0.0.1:50053",
        "gateway    http http://127.0.0.1:8080",
        "mm         grpc 127.0.0.1:50061",
        "flow       grpc 127.0.0.1:50062",
    ]


def test_only_the_store_without_a_url_runs_locally(tmp_path: Path) -> None:
    settings = StackSettings.from_env({"REDIS_URL": "redis://cache:6379/0"}, cwd=tmp_path)
    specs = exchange_specs(settings)

    assert [spec.name for spec in specs] == [
        "postgres",
        "engine",
        "ledger",
        "publisher",
        "stream",
        "gateway",
        "mm",
        "flow",
    ]
    assert summary(settings, specs).splitlines()[:2] == [
        "postgres   postgresql://postgres@127.0.0.1:55432/exchange",
        "redis      redis://cache:6379/0 (external)",
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://root:hunter2@db/exchange", "DATABASE_URL must be a URL"),
        ("REDIS_URL", "cache:6379", "REDIS_URL must be a URL"),
        ("POSTGRES_PORT", "70000", "POSTGRES_PORT=70000 is outside"),
        ("REDIS_PORT", "six", "REDIS_PORT='six' is not a port number"),
    ],
)
def test_a_wrong_setting_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        StackSettings.from_env({name: value})
    assert "hunter2" not in str(raised.value)
