#!/usr/bin/env python3
"""Builds tests/fixtures/sample-subscription.json: the README demo input.

It is the event a Lambda subscribed to a CloudTrail log group receives,
{"awslogs": {"data": base64(gzip(subscription JSON))}}, with padded base64 as
CloudWatch Logs writes it. The DATA_MESSAGE holds seven log events, in time order:
six CloudTrail records from tests/fixtures/events/ and one log event that is not a
record (a cut-off record, as a broken forwarder would leave), which trailwatch skips.

    trailwatch scan tests/fixtures/sample-subscription.json

alerts on four of them (see tests/integration/sample.rs for the exact list).

Usage: scripts/make-sample-batch.py [OUTPUT]   (default: the fixture path above)
Python 3 standard library only; the output is reproducible (gzip mtime is 0).
"""

import base64
import datetime
import gzip
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
EVENTS = REPO / "tests" / "fixtures" / "events"
DEFAULT_OUTPUT = REPO / "tests" / "fixtures" / "sample-subscription.json"

OWNER = "111122223333"
LOG_GROUP = "aws-cloudtrail-logs-111122223333"
LOG_STREAM = "111122223333_CloudTrail_us-east-1"

# (fixture file, or None for the non-record log event), in time order.
BATCH = [
    "stop-logging-access-denied.json",
    "console-login-iam-user-no-mfa.json",
    "console-login-sso-assumed-role.json",
    "describe-trails.json",
    "update-trail-invalid-cwl-role.json",
    None,
    "stop-logging-success.json",
]

# The record whose first 160 characters make the non-JSON log event.
CUT_OFF_SOURCE = "lookup-events.json"
CUT_OFF_AT = 160

# CloudWatch Logs ingests a few seconds after the event.
INGEST_DELAY_MS = 2_000


def compact(record):
    """A record as CloudTrail writes it to CloudWatch Logs: one line of JSON."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def millis(event_time):
    parsed = datetime.datetime.strptime(event_time, "%Y-%m-%dT%H:%M:%SZ")
    parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return int(parsed.timestamp() * 1000)


def log_event_id(timestamp, index):
    """A 56-digit id, like CloudWatch's, unique within the batch."""
    return f"{timestamp:013d}{index:043d}"


def load(name):
    with open(EVENTS / name, encoding="utf-8") as handle:
        return json.load(handle)


def log_events():
    events = []
    previous = None
    for index, name in enumerate(BATCH):
        if name is None:
            message = compact(load(CUT_OFF_SOURCE))[:CUT_OFF_AT]
            timestamp = previous + 60_000
        else:
            record = load(name)
            message = compact(record)
            timestamp = millis(record["eventTime"]) + INGEST_DELAY_MS
        previous = timestamp
        events.append(
            {"id": log_event_id(timestamp, index), "timestamp": timestamp, "message": message}
        )
    return events


def payload():
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": OWNER,
        "logGroup": LOG_GROUP,
        "logStream": LOG_STREAM,
        "subscriptionFilters": ["trailwatch"],
        "logEvents": log_events(),
    }
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    compressed = gzip.compress(raw, compresslevel=9, mtime=0)
    encoded = base64.b64encode(compressed).decode("ascii")  # padded, like CloudWatch
    return {"awslogs": {"data": encoded}}


def main(argv):
    output = pathlib.Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    output.write_text(json.dumps(payload(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output} ({len(BATCH)} log events)")


if __name__ == "__main__":
    main(sys.argv)
