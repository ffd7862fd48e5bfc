#!/usr/bin/env python3
"""Names the tests a `swift test` run started and never ended, from its event stream.

A test process that crashes (a signal) prints a backtrace but not which tests were running;
`swift test --experimental-event-stream-output FILE --experimental-event-stream-version 0`
writes one JSON event per line as the run goes, and this reads it back.
Usage: scripts/unfinished-tests.py EVENTS.jsonl
"""
import json
import sys


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: scripts/unfinished-tests.py EVENTS.jsonl", file=sys.stderr)
        return 2
    running: dict[str, str] = {}
    try:
        with open(sys.argv[1], encoding="utf-8") as events:
            for line in events:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line of a crashed run may be cut short
                payload = record.get("payload") or {}
                test = payload.get("testID")
                if record.get("kind") != "event" or not test:
                    continue
                if payload.get("kind") == "testStarted":
                    messages = payload.get("messages") or [{}]
                    running[test] = messages[0].get("text", test)
                elif payload.get("kind") == "testEnded":
                    running.pop(test, None)
    except OSError as error:
        print(f"no test events to read: {error}", file=sys.stderr)
        return 1
    if not running:
        print("every test that started also ended")
        return 0
    print(f"{len(running)} test(s) and suite(s) started and never ended:")
    for test in running:
        print(f"  {test}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
