"""Loads a Chrome trace (JSON object format) with Python's json and checks it against the
Trace Event Format: a "traceEvents" list; complete events ("ph": "X") with a name, numeric
"ts" and "dur" >= 0 (microseconds), integer pid and tid; metadata events ("ph": "M") naming
each process. Prints JSON: {"processes": {pid: name}, "tracks": {pid: [tid, ...]},
"steps": [...], "phases": [...], "events": N}. Exit 1 with one line naming the problem.

    trace_check.py FILE.json
"""
import json
import sys


def fail(message):
    print(f"trace_check.py: {sys.argv[1]}: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    try:
        trace = json.load(open(sys.argv[1]))
    except ValueError as error:
        fail(f"not valid JSON ({error})")
    events = trace.get("traceEvents") if isinstance(trace, dict) else None
    if not isinstance(events, list):
        fail('no "traceEvents" list')
    processes, tracks, steps, phases = {}, {}, set(), set()
    for index, event in enumerate(events):
        kind = event.get("ph")
        if not isinstance(event.get("pid"), int) or not isinstance(event.get("tid"), int):
            fail(f"event {index} has no integer pid and tid")
        if kind == "M":
            if event.get("name") == "process_name":
                processes[event["pid"]] = event["args"]["name"]
        elif kind == "X":
            ts, dur = event.get("ts"), event.get("dur")
            if not isinstance(event.get("name"), str) or not isinstance(ts, (int, float)) or not isinstance(dur, (int, float)) or dur < 0:
                fail(f"event {index} is not a complete event with name, ts and dur >= 0: {event}")
            tracks.setdefault(event["pid"], set()).add(event["tid"])
            steps.add(event["args"]["step"])
            if event.get("cat") == "phase":
                phases.add(event["name"])
        else:
            fail(f"event {index} has phase type {kind!r}, not X or M")
    unnamed = set(tracks) - set(processes)
    if unnamed:
        fail(f"processes {sorted(unnamed)} have events but no process_name")
    print(json.dumps({"processes": {str(k): v for k, v in sorted(processes.items())},
                      "tracks": {str(k): sorted(v) for k, v in sorted(tracks.items())},
                      "steps": sorted(steps), "phases": sorted(phases), "events": len(events)}))


if __name__ == "__main__":
    main()
