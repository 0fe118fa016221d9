"""deploy/apt_mirror.py, which names the mirror of `make image`'s base: the Debian source of
bookworm main in either of apt's formats, wherever it is listed among others."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.apt_mirror import main, mirror, source_files

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/debian
  http://second.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
"""


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_deb822_stanza_of_the_suite_s_main_is_taken_past_security_and_disabled(
    tmp_path: Path,
) -> None:
    apt = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert mirror(source_files(apt)) == "http://mirror.example/debian"


def test_one_line_entries_with_options_and_other_vendors_first(tmp_path: Path) -> None:
    apt = apt_dir(
        tmp_path,
        {
            "sources.list": "# deb http://commented.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] https://vendor.example/apt stable main\n"
            "deb http://deb.debian.org/debian-security bookworm-security main\n"
            "deb [ signed-by=/usr/share/keyrings/d.gpg ] http://ftp.example/debian bookworm main\n",
            "sources.list.d/a.sources": DEB822,
        },
    )
    assert mirror(source_files(apt)) == "http://ftp.example/debian"


def test_a_machine_without_one_says_what_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = DEB822.replace("bookworm", "nodistro")
    apt = apt_dir(tmp_path, {"sources.list.d/nodesource.sources": other})
    monkeypatch.setattr("deploy.apt_mirror.APT", apt)
    assert main([]) == 1
    assert "no apt source of bookworm main" in capsys.readouterr().err
    assert main(["nodistro"]) == 0
    assert capsys.readouterr().out == "http://mirror.example/debian\n"
