"""The Debian mirror this machine's apt uses for bookworm's main component, for `make image`'s
base (deploy/image.sh passes it to mmdebstrap; a fixed mirror may be unreachable here):

  python3 -m deploy.apt_mirror [SUITE]   # prints the mirror's URI, or exits 1 saying why

Both formats apt reads: deb822 stanzas (`/etc/apt/sources.list.d/*.sources`, Debian 12's
default) and one-line entries (`sources.list`, `*.list`), options in brackets included. Only a
`deb` source of SUITE itself with `main` counts: `bookworm-security` or another vendor's
repository listed first is not a Debian mirror. Standard library only: it runs before the
project's virtualenv exists.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

APT = Path("/etc/apt")


class Source(NamedTuple):
    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]


def source_files(apt: Path = APT) -> list[Path]:
    """The files apt reads, in its order: sources.list, then sources.list.d by name."""
    parts = sorted(
        p for p in (apt / "sources.list.d").glob("*") if p.suffix in (".list", ".sources")
    )
    return [p for p in [apt / "sources.list", *parts] if p.is_file()]


def deb822_sources(text: str) -> Iterator[Source]:
    """Each enabled stanza."""
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:  # a folded continuation
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        yield Source(*(fields.get(name, "").split() for name in Source._fields))


def one_line_sources(text: str) -> Iterator[Source]:
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        kind, rest = words[0], words[1:]
        if rest and rest[0].startswith("["):  # [arch=amd64 signed-by=...]
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2:
            yield Source([kind], [rest[0]], [rest[1]], rest[2:])


def mirror(files: Iterable[Path], suite: str = "bookworm") -> str | None:
    for path in files:
        text = path.read_text()
        parse = deb822_sources if path.suffix == ".sources" else one_line_sources
        for source in parse(text):
            wanted = "deb" in source.types and suite in source.suites
            if wanted and "main" in source.components and source.uris:
                return source.uris[0]
    return None


def main(argv: list[str]) -> int:
    suite = argv[0] if argv else "bookworm"
    files = source_files(APT)
    found = mirror(files, suite)
    if found is None:
        read = ", ".join(str(p) for p in files) or f"nothing under {APT}"
        print(f"no apt source of {suite} main (read: {read})", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
