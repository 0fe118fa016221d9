"""Counts of what the abuse tests sent and what came back, for the report.

Every answer is filed under its suite ("rest", "signatures", "ws"): cases run, answers by
HTTP status (or "ws" frame error name), and by stable error code. Named checks (the
authorization cases) are filed as pass or fail, one per name; measurements (the rate-limit
flood) under their own heading. Everything goes to tests/abuse/artifacts/abuse-report.json at
the end of the session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ARTIFACTS = Path(__file__).with_name("artifacts")
REPORT = ARTIFACTS / "abuse-report.json"


@dataclass
class Suite:
    cases: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    state_checks: int = 0  # engine state hashes compared around refused input
    state_changed: int = 0  # must stay 0

    def as_json(self) -> dict[str, Any]:
        server_errors = sum(n for s, n in self.statuses.items() if s.startswith("5"))
        return {
            "cases": self.cases,
            "status": dict(sorted(self.statuses.items())),
            "codes": dict(sorted(self.codes.items())),
            "5xx": server_errors,
            "state_checks": self.state_checks,
            "state_changed": self.state_changed,
        }


@dataclass
class Tally:
    suites: dict[str, Suite] = field(default_factory=dict)
    verdicts: dict[str, dict[str, bool]] = field(default_factory=dict)  # group -> case -> passed
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.suites or self.verdicts or self.figures)

    @contextmanager
    def case(self, group: str, name: str) -> Iterator[None]:
        """Files `name` as passed when the block completes, as failed when it raises."""
        cases = self.verdicts.setdefault(group, {})
        try:
            yield
        except BaseException:
            cases[name] = False
            raise
        cases[name] = True

    def answer(self, suite: str, status: int | str, code: str = "") -> None:
        """One case and its answer (`code` empty for a success)."""
        s = self.suites.setdefault(suite, Suite())
        s.cases += 1
        s.statuses[str(status)] += 1
        if code:
            s.codes[code] += 1

    def state(self, suite: str, *, changed: bool) -> None:
        s = self.suites.setdefault(suite, Suite())
        s.state_checks += 1
        s.state_changed += changed

    def report(self) -> dict[str, Any]:
        suites = {name: s.as_json() for name, s in sorted(self.suites.items())}
        checks = {
            group: {
                "cases": len(cases),
                "passed": sum(cases.values()),
                "failed": sorted(name for name, ok in cases.items() if not ok),
                "results": {name: "pass" if ok else "fail" for name, ok in sorted(cases.items())},
            }
            for group, cases in sorted(self.verdicts.items())
        }
        return {
            "suites": suites,
            "total": {
                "cases": sum(s["cases"] for s in suites.values()),
                "5xx": sum(s["5xx"] for s in suites.values()),
                "state_changed": sum(s["state_changed"] for s in suites.values()),
            },
            **checks,
            **dict(sorted(self.figures.items())),
        }

    def write(self) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        REPORT.write_bytes(orjson.dumps(self.report(), option=orjson.OPT_INDENT_2))
        return REPORT

    def summary(self) -> list[str]:
        lines = []
        report = self.report()
        for name, s in report["suites"].items():
            codes = ", ".join(f"{c} {n}" for c, n in s["codes"].items())
            lines.append(
                f"{name}: {s['cases']} cases, status {s['status']}, 5xx {s['5xx']}, "
                f"state checks {s['state_checks']} (changed {s['state_changed']}); {codes}"
            )
        for group in sorted(self.verdicts):
            checks = report[group]
            lines.append(
                f"{group}: {checks['passed']}/{checks['cases']} cases pass"
                + (f"; FAILED {', '.join(checks['failed'])}" if checks["failed"] else "")
            )
        for heading in sorted(self.figures):
            lines.append(f"{heading}: {orjson.dumps(report[heading]).decode()}")
        return lines


TALLY = Tally()
