"""Running a service as another OS user: PostgreSQL refuses to run as root, so a launcher
running as root runs it as `postgres`, and hands that user its data folder."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def as_user(user: str | None, argv: Sequence[str]) -> list[str]:
    """`argv` prefixed so that it runs as `user`, with that user's own groups rather than
    ours; unchanged for None.

    setpriv (Debian's util-linux) switches user and then execs the program, so the process
    is still the one the supervisor started; asyncio's own `user=` is not in uvloop.
    """
    if user is None:
        return list(argv)
    entry = _entry(user)
    return [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--init-groups",
        "--",
        *argv,
    ]


def hand_over(folder: Path, user: str) -> None:
    """Give `folder` to `user`, and let everyone traverse (not list) the folders above it,
    so that `user` can reach it: pytest's temporary folders, for one, are private to root."""
    entry = _entry(user)
    shutil.chown(folder, entry.pw_uid, entry.pw_gid)
    for parent in folder.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)
            log.info("made %s traversable so that %s can reach %s", parent, user, folder)


def _entry(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise LookupError(f"there is no OS user {user!r}") from None
