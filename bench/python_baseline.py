#!/usr/bin/env python3
"""Python baseline for trailwatch's whole-process comparison (stdlib only).

Does what `trailwatch scan --rules <the 3 rules below> --format email|json FILES` does,
as a hand-written Python Lambda would: for each CloudWatch Logs subscription payload file
(the batches `cargo bench --bench pipeline` writes to target/bench-batches/), json.loads
the event, base64-decode and gunzip awslogs.data, json.loads the subscription message,
json.loads every log event's message, evaluate trailwatch's three built-in rules
cloudtrail-change-failed, cloudtrail-logging-changed and console-login-without-mfa
(hand-translated from rules/*.yml, with Sigma's matching semantics), and print every
alert: `--format email` (default) the SNS subject and text body, `--format json` one
JSON object per line (the alert without its prose), as the CLI prints them.

It is the fastest reasonable Python, not a generic Sigma engine: the detection logic is
compiled by hand, the shared selection of the two CloudTrail rules is evaluated once,
there is no gzip size bound and no input-format detection. So Rust/Python ratios
computed from it are conservative. Rule metadata (title, level, prose, tags) comes from
the batches' manifest.json, since the stdlib has no YAML parser. Timing is hyperfine's
(scripts/bench.sh).

    python3 bench/python_baseline.py [--format email|json] [--manifest FILE] FILE...
"""

import argparse
import base64
import json
import os
import sys
import zlib

# ---------------------------------------------------------------------------
# Sigma field access and matching, as rsigma-eval does it on trailwatch's view
# ---------------------------------------------------------------------------

MISSING = object()


def _collect(current, keys, out):
    """rsigma's dotted-path walk: arrays are walked through, every hit is kept."""
    if not keys:
        out.append(current)
        return
    if isinstance(current, dict):
        if keys[0] in current:
            _collect(current[keys[0]], keys[1:], out)
    elif isinstance(current, list):
        for item in current:
            _collect(item, keys, out)


def get_field(record, path, keys):
    """The value at a Sigma field name: a literal key first, then a dotted path."""
    value = record.get(path, MISSING)
    if value is not MISSING or keys is None:
        return value
    if keys[0] not in record:
        return MISSING
    out = []
    _collect(record, keys, out)
    if not out:
        return MISSING
    return out[0] if len(out) == 1 else out


def _as_text(value):
    """How a non-string value reads to a string matcher (None: it cannot match)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        # trailwatch's record view reads objects as their compact JSON text.
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return None


def equals_any(value, lowered):
    """Sigma's default match: case-insensitive equality with any of `lowered`;
    a list matches when any element does."""
    if type(value) is str:
        return value.lower() in lowered
    if value is MISSING or value is None:
        return False
    if isinstance(value, list):
        return any(equals_any(item, lowered) for item in value)
    text = _as_text(value)
    return text is not None and text.lower() in lowered


class Field:
    """A Sigma field name, split once."""

    __slots__ = ("path", "keys")

    def __init__(self, path):
        self.path = path
        self.keys = path.split(".") if "." in path else None

    def get(self, record):
        return get_field(record, self.path, self.keys)

    def exists(self, record):
        """`|exists: true`: present and not null."""
        value = get_field(record, self.path, self.keys)
        return value is not MISSING and value is not None


# ---------------------------------------------------------------------------
# The three built-in rules, hand-translated from rules/*.yml
# ---------------------------------------------------------------------------

EVENT_SOURCE = Field("eventSource")
EVENT_NAME = Field("eventName")
ERROR_CODE = Field("errorCode")
CONSOLE_LOGIN_RESULT = Field("responseElements.ConsoleLogin")
IDENTITY_TYPE = Field("userIdentity.type")
MFA_USED = Field("additionalEventData.MFAUsed")
SAML_PROVIDER = Field("additionalEventData.SamlProviderArn")

CLOUDTRAIL_SOURCE = {"cloudtrail.amazonaws.com"}
TRAIL_CHANGES = {
    name.lower()
    for name in (
        "CreateTrail",
        "UpdateTrail",
        "DeleteTrail",
        "StartLogging",
        "StopLogging",
        "PutEventSelectors",
        "PutInsightSelectors",
    )
}
SIGNIN_SOURCE = {"signin.amazonaws.com"}
CONSOLE_LOGIN = {"consolelogin"}
SUCCESS = {"success"}
IAM_USER_OR_ROOT = {"iamuser", "root"}
MFA_YES = {"yes"}


def matching_rules(record):
    """Names of the built-in rules that match, in the order Rust loads them (by path)."""
    matched = []
    # cloudtrail-change-failed.yml / cloudtrail-logging-changed.yml share `selection`:
    #   eventSource: cloudtrail.amazonaws.com
    #   eventName: [CreateTrail, UpdateTrail, ..., PutInsightSelectors]
    #   failed: errorCode|exists: true
    #   condition: selection and failed  /  selection and not failed
    if equals_any(EVENT_SOURCE.get(record), CLOUDTRAIL_SOURCE) and equals_any(
        EVENT_NAME.get(record), TRAIL_CHANGES
    ):
        if ERROR_CODE.exists(record):
            matched.append("cloudtrail-change-failed")
        else:
            matched.append("cloudtrail-logging-changed")
    # console-login-without-mfa.yml:
    #   selection: eventSource: signin.amazonaws.com, eventName: ConsoleLogin,
    #              responseElements.ConsoleLogin: Success, userIdentity.type: [IAMUser, Root]
    #   filter_mfa: additionalEventData.MFAUsed: 'Yes'
    #   filter_saml: additionalEventData.SamlProviderArn|exists: true
    #   condition: selection and not filter_mfa and not filter_saml
    if (
        equals_any(EVENT_SOURCE.get(record), SIGNIN_SOURCE)
        and equals_any(EVENT_NAME.get(record), CONSOLE_LOGIN)
        and equals_any(CONSOLE_LOGIN_RESULT.get(record), SUCCESS)
        and equals_any(IDENTITY_TYPE.get(record), IAM_USER_OR_ROOT)
        and not equals_any(MFA_USED.get(record), MFA_YES)
        and not SAML_PROVIDER.exists(record)
    ):
        matched.append("console-login-without-mfa")
    return matched


# ---------------------------------------------------------------------------
# Rendering, as src/alert/ does it
# ---------------------------------------------------------------------------

MAX_SUBJECT_CHARS = 99
MAX_BODY_BYTES = 240 * 1024
MAX_FIELD_CHARS = 1000
TRUNCATION_MARKER = (
    "[... record truncated to fit the SNS message size limit; "
    "see the full event in CloudTrail ...]"
)


def _text(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, str) else None


def actor(record):
    identity = record.get("userIdentity")
    ident = lambda *keys: _text(identity, *keys)  # noqa: E731
    kind = ident("type") or ""
    found = None
    if kind == "Root":
        found = "root"
    elif kind == "IAMUser":
        found = ident("userName")
    elif kind in ("AssumedRole", "FederatedUser"):
        role = ident("sessionContext", "sessionIssuer", "userName")
        arn = ident("arn")
        session = arn.rsplit("/", 1)[-1] if arn is not None else None
        if role is not None and session is not None and role != session:
            found = f"{role}/{session}"
        elif role is not None:
            found = role
        else:
            found = session
    elif kind == "AWSService":
        found = ident("invokedBy")
    elif kind == "IdentityCenterUser":
        user = ident("onBehalfOf", "userId")
        found = f"identity-center:{user}" if user is not None else None
    return (
        found
        or ident("userName")
        or ident("arn")
        or ident("principalId")
        or ident("invokedBy")
        or "unknown"
    )


def summary_of(record):
    field = lambda key: _text(record, key) or ""  # noqa: E731
    return {
        "event_id": field("eventID"),
        "event_name": field("eventName"),
        "event_source": field("eventSource"),
        "event_time": field("eventTime"),
        "account_id": _text(record, "recipientAccountId")
        or _text(record, "userIdentity", "accountId")
        or "",
        "region": field("awsRegion"),
        "actor": actor(record),
        "actor_type": _text(record, "userIdentity", "type") or "",
        "actor_arn": _text(record, "userIdentity", "arn"),
        "source_ip": field("sourceIPAddress"),
        "user_agent": _text(record, "userAgent"),
        "error_code": _text(record, "errorCode"),
        "error_message": _text(record, "errorMessage"),
    }


def ascii_line(text):
    if text.isascii() and text.isprintable():
        return text
    return "".join(
        c if " " <= c <= "~" else (" " if c.isspace() or not c.isprintable() else "?")
        for c in text
    )


def shorten(text, max_chars):
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 3, 0)] + "..."


def subject(rule, event):
    text = f"[{rule['severity'].upper()}] {rule['title']}: {event['actor']}"
    if event["account_id"]:
        text += f" in {event['account_id']}"
    if event["region"]:
        text += f" ({event['region']})"
    return shorten(ascii_line(text), MAX_SUBJECT_CHARS)


def _section(parts, heading, text):
    parts.append(f"\n{heading}\n{'-' * len(heading)}\n{text.rstrip()}\n")


def text_body(rule, event, record):
    parts = [f"[{rule['severity'].upper()}] {rule['title']}\n\n"]

    def line(label, value):
        if value:
            parts.append(f"{label:<14}{shorten(value, MAX_FIELD_CHARS)}\n")

    call = f"{event['event_name']} on {event['event_source']}"
    code = event["error_code"]
    line("What:", f"{call} failed ({code})" if code is not None else f"{call} succeeded")
    if event["actor_arn"] is not None:
        who = f"{event['actor']} ({event['actor_type']}, {event['actor_arn']})"
    elif not event["actor_type"]:
        who = event["actor"]
    else:
        who = f"{event['actor']} ({event['actor_type']})"
    line("Who:", who)
    line("Account:", event["account_id"])
    line("Region:", event["region"])
    line("Source IP:", event["source_ip"])
    line("User agent:", event["user_agent"] or "")
    line("When:", event["event_time"])
    if code is not None:
        message = event["error_message"]
        line("Error:", f"{code}: {message}" if message is not None else code)
    line("Event ID:", event["event_id"])
    line("Rule:", f"{rule['name']} ({rule['id']})" if rule["id"] else rule["name"])
    line("Tags:", ", ".join(rule["tags"]))
    if rule["description"]:
        _section(parts, "Why it matters", rule["description"])
    if rule["runbook"]:
        _section(parts, "What to do", rule["runbook"])
    if rule["falsepositives"]:
        _section(parts, "Known false positives", "\n".join(f"- {f}" for f in rule["falsepositives"]))
    region, event_id = event["region"], event["event_id"]
    if region and event_id:
        url = (
            f"https://{region}.console.aws.amazon.com/cloudtrailv2/home"
            f"?region={region}#/events/{event_id}"
        )
        _section(parts, "View in the CloudTrail console", url)
    body = "".join(parts)

    pretty = json.dumps(record, indent=2, ensure_ascii=False)
    heading = "\nEvent record\n------------\n"
    room = MAX_BODY_BYTES - (len(body.encode()) + len(heading) + 1)
    pretty_bytes = pretty.encode()
    if len(pretty_bytes) <= room:
        return body + heading + pretty + "\n"
    keep = max(room - len(TRUNCATION_MARKER) - 1, 0)
    cut = pretty_bytes[:keep].decode("utf-8", errors="ignore")
    return body + heading + cut + "\n" + TRUNCATION_MARKER + "\n"


def alert_json(rule, event, record):
    """`trailwatch scan --format json`'s line: the alert object without the rule prose."""
    obj = {
        "rule": rule["name"],
        "rule_id": rule["id"],
        "title": rule["title"],
        "severity": rule["severity"],
        "tags": rule["tags"],
    }
    obj.update(event)
    obj["record"] = record
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------
# The function body
# ---------------------------------------------------------------------------


def is_record(record):
    return (
        isinstance(record, dict)
        and isinstance(record.get("eventName"), str)
        and isinstance(record.get("eventSource"), str)
    )


def decode(payload):
    """Lambda event bytes -> the subscription message (base64, gunzip, JSON)."""
    event = json.loads(payload)
    compressed = base64.b64decode(event["awslogs"]["data"])
    return json.loads(zlib.decompress(compressed, 16 + zlib.MAX_WBITS))


def scan(path, rules, fmt, out):
    """One payload file through the function body. Returns (events, alerts)."""
    events = alerts = 0
    with open(path, "rb") as fh:
        data = decode(fh.read())
    if data["messageType"] != "DATA_MESSAGE":
        return 0, 0
    for log_event in data["logEvents"]:
        try:
            record = json.loads(log_event["message"])
        except ValueError:
            continue
        if not is_record(record):
            continue
        events += 1
        names = matching_rules(record)
        if not names:
            continue
        event = summary_of(record)
        for name in names:
            rule = rules[name]
            if fmt == "email":
                out.write(f"Subject: {subject(rule, event)}\n\n{text_body(rule, event, record)}\n{'=' * 72}\n\n")
            else:
                out.write(alert_json(rule, event, record) + "\n")
            alerts += 1
    return events, alerts


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("email", "json"), default="email")
    parser.add_argument("--manifest", default=os.path.join(root, "target", "bench-batches", "manifest.json"),
                        help="the batches' manifest.json (built-in rule metadata)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="subscription payload files")
    args = parser.parse_args()

    with open(args.manifest, encoding="utf-8") as fh:
        rules = {rule["name"]: rule for rule in json.load(fh)["builtin_rules"]}
    missing = {"cloudtrail-change-failed", "cloudtrail-logging-changed", "console-login-without-mfa"} - set(rules)
    if missing:
        sys.exit(f"python baseline: {args.manifest} lacks built-in rules {sorted(missing)}")
    events = alerts = 0
    for path in args.files:
        n_events, n_alerts = scan(path, rules, args.format, sys.stdout)
        events += n_events
        alerts += n_alerts
    print(f"python baseline: {events} event(s) read from {len(args.files)} input(s); {alerts} alert(s)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
