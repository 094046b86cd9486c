"""Parses Prometheus text from stdin with the reference Python client's
parser and prints each family as JSON: name, type and samples. An
independent reading of bessmon's /metrics: a malformed line fails here."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({
        "name": f.name,
        "type": f.type,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples
        ],
    })
json.dump(out, sys.stdout)
