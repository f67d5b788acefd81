"""Parses a Prometheus text exposition from stdin with the Prometheus project's own Python client
(prometheus_client.parser) and prints its samples as JSON lines: {"name", "labels", "value"}.
Exits 1 with the parser's error when the exposition does not parse. Used by tests/api/metrics.rs."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
except Exception as e:  # the parser's message is the test's failure message
    print(f"exposition does not parse: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
for o in out:
    print(json.dumps(o))
