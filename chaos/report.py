"""The run's figures as JSON (reports/chaos-report.json) and as a few lines for people."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections import Counter
from typing import Any

from chaos.checks import Findings
from chaos.suite import Run


def build(run: Run, command: list[str]) -> dict[str, Any]:
    findings = Findings()
    for trial in run.trials:
        for kind, n in trial.findings.counts.items():
            findings.counts[kind] += n
        for kind, examples in trial.findings.examples.items():
            findings.examples.setdefault(kind, []).extend(examples)
    faults: dict[str, Counter[str]] = {}
    recovery: dict[str, list[float]] = {}
    overlapping: Counter[str] = Counter()  # "first+second": the second sent while first was down
    for trial in run.trials:
        for injected in trial.faults:
            fault = injected.fault
            faults.setdefault(fault.service, Counter())[fault.kind] += 1
            recovery.setdefault(f"{fault.service} {fault.kind}", []).append(injected.recovery)
            if injected.during:
                overlapping[f"{injected.during}+{fault.service}"] += 1
    last = run.trials[-1]
    return {
        "command": command,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "commit": _commit(),
        "seed": run.config.seed,
        "backend": run.backend,
        "users": run.config.users,
        "setup_seconds": round(run.setup_seconds, 1),
        "trials_run": len(run.trials),
        "faults_injected": sum(sum(c.values()) for c in faults.values()),
        "faults_by_service": {name: dict(kinds) for name, kinds in sorted(faults.items())},
        "overlapping_faults": sum(overlapping.values()),
        "overlapping_pairs": dict(sorted(overlapping.items())),
        "acknowledged_but_lost": findings.counts["lost"],
        "duplicates": findings.counts["duplicate"],
        "findings": dict(findings.counts),
        "finding_examples": findings.examples,
        "recovery_seconds": {
            name: {
                "count": len(times),
                "p50": round(statistics.median(times), 2),
                "max": round(max(times), 2),
            }
            for name, times in sorted(recovery.items())
        },
        "answers": run.record.summary(),
        "refusals": dict(run.record.refusals.most_common()),
        "server_errors_other_than_503": dict(run.record.server_errors),
        "engine_events": last.last_seq,
        "trades": last.stats.get("trades", 0),
        "orders": last.stats.get("orders", 0),
        "triggers": {name: last.stats.get(key, 0) for name, key in (
            ("placed", "triggers"), ("fired", "triggers_fired"), ("legs", "trigger_legs"))},
        "capital": {key: last.stats.get(key, 0) for key in (
            "deposits_credited", "withdrawals", "withdrawals_held", "withdrawals_confirmed",
            "withdrawals_declined")},
        "websocket": {
            name: {"connections": w.connections, "resyncs": w.resyncs, "restarts": w.restarts,
                   "gaps": w.gaps, "error_frames": len(w.errors), "depth_frames": w.frames,
                   "trade_frames": w.trade_frames, "empty_batches": w.empty_batches,
                   "trades": sum(log.received for log in w.trade_logs)}
            for name, w in run.watchers.items()
        },
        "trials": [
            {
                "seed": t.seed,
                "load_seconds": round(t.seconds, 1),
                "check_seconds": round(t.check_seconds, 1),
                "engine_events": t.last_seq,
                "faults": [
                    {"service": i.fault.service, "kind": i.fault.kind, "at": round(i.at, 1),
                     "hold": round(i.fault.hold, 1), "recovery": round(i.recovery, 2),
                     "during": i.during}
                    for i in t.faults
                ],
                "findings": dict(t.findings.counts),
            }
            for t in run.trials
        ],
    }  # fmt: skip


def passed(report: dict[str, Any]) -> bool:
    return not report["findings"] and not report["server_errors_other_than_503"]


def summary(report: dict[str, Any]) -> list[str]:
    lines = [
        f"chaos on {report['backend']}: {report['trials_run']} trials, "
        f"{report['faults_injected']} faults "
        f"({_faults_text(report['faults_by_service'])})",
        f"  overlapping (second killed while the first restarted): "
        f"{report['overlapping_faults']} {report['overlapping_pairs'] or ''}",
        f"  engine events {report['engine_events']}, trades {report['trades']}, "
        f"orders {report['orders']}, triggers {report['triggers']}",
        f"  acknowledged but lost: {report['acknowledged_but_lost']}, "
        f"duplicates: {report['duplicates']}, all findings: {report['findings'] or 'none'}",
        f"  capital: {report['capital']}",
        f"  answers: {report['answers']}",
        f"  websocket: {report['websocket']}",
        "  recovery (s, p50/max):",
    ]
    for name, times in report["recovery_seconds"].items():
        lines.append(
            f"    {name:<20} {times['p50']:>6.2f} / {times['max']:>6.2f}  (n={times['count']})"
        )
    for kind, examples in report["finding_examples"].items():
        lines.append(f"  {kind}:")
        lines.extend(f"    {example}" for example in examples[:5])
    lines.append("PASS" if passed(report) else "FAIL")
    return lines


def _faults_text(by_service: dict[str, dict[str, int]]) -> str:
    return ", ".join(
        f"{name} {'+'.join(f'{n}x{kind}' for kind, n in kinds.items())}"
        for name, kinds in by_service.items()
    )


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()
