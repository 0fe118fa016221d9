"""Reading a service's real /metrics page: served over HTTP, parsed by prometheus_client."""

from __future__ import annotations

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from servicekit.metrics import serve_metrics

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": (),
}


class Page:
    """One /metrics page: its samples, and every series name it declares (a labelled
    metric declares its name before its first sample)."""

    def __init__(self, text: str) -> None:
        self.families = list(text_string_to_metric_families(text))
        self.names: set[str] = set()
        for family in self.families:
            self.names.add(family.name)
            self.names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
            self.names.update(sample.name for sample in family.samples)

    def value(self, name: str, **labels: str) -> float | None:
        for family in self.families:
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return None


async def fetch(url: str) -> Page:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return Page(await response.text())


async def scrape(registry: CollectorRegistry) -> Page:
    """The page `registry` makes, served and fetched the way Prometheus would get it."""
    runner = await serve_metrics(registry, "127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        return await fetch(f"http://127.0.0.1:{port}/metrics")
    finally:
        await runner.cleanup()
