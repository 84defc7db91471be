"""Reading /metrics as Prometheus does: prometheus_client's own parser, then one value by
name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics

# A scrape as {(sample name, sorted labels): value}.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(base: str) -> Samples:
    """GET ``base``/metrics, as Prometheus asks for it."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def rendered(metrics: Metrics) -> Samples:
    """What a scrape of this process would get, without a listener."""
    body, _ = await metrics.render()
    return parse(body.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled series not seen yet (as Prometheus reads absence)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
