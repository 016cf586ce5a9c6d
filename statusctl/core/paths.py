"""The one place that decides where statusctl keeps its files."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DB = "STATUSCTL_DB"
DB_FILENAME = "statusctl.db"
OSS_DB_FILENAME = "statusctl-oss.db"


def data_dir() -> Path:
    """The user data directory (platformdirs), not created here."""
    import platformdirs

    return Path(platformdirs.user_data_dir("statusctl", appauthor=False))


def db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--db`, else `STATUSCTL_DB`, else statusctl.db in the user data directory."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    return data_dir() / DB_FILENAME


def oss_db_path(main_db: Path) -> Path:
    """The Order Status System's own database, beside the main one."""
    return main_db.with_name(OSS_DB_FILENAME)
