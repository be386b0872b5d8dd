"""Milliseconds a build spent in one vertex, from buildctl's `--progress rawjson` on stdin.

    python3 vertex_ms.py PATTERN < progress.json

PATTERN is a regular expression matched against vertex names; of the vertices whose name matches
and that completed, the longest is measured, from its start to its completion (a Dockerfile build
reads its context twice: a small read of .dockerignore, then the context itself). Prints 0 when
no such vertex completed (a step answered from the cache may have no start).
"""
import json
import re
import sys
from datetime import datetime


def instant(text):
    # buildctl prints nanoseconds; datetime takes microseconds.
    text = re.sub(r"(\.\d{6})\d*", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text)


def main():
    pattern = re.compile(sys.argv[1])
    spans = {}
    order = []
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        for vertex in json.loads(line).get("vertexes") or []:
            if not pattern.search(vertex.get("name", "")):
                continue
            digest = vertex["digest"]
            if digest not in spans:
                order.append(digest)
                spans[digest] = {}
            for field in ("started", "completed"):
                if vertex.get(field):
                    spans[digest][field] = vertex[field]
    longest = 0
    for digest in order:
        span = spans[digest]
        if "started" in span and "completed" in span:
            elapsed = instant(span["completed"]) - instant(span["started"])
            longest = max(longest, round(elapsed.total_seconds() * 1000))
    print(longest)


main()
