#!/usr/bin/env python3
"""Helpers of bench/compare/run.sh: what the AWS emulator saw, whether a tool really built the
managed set, and the final figures. Runs on Debian's /usr/bin/python3 (boto3 and PyYAML from
python3-boto3 and python3-yaml, which Ansible pulls in); talks to 127.0.0.1 only.

  compare.py time OUT CMD...                        run CMD (output to OUT): wall, CPU, status
  compare.py calls LOG FROM TO REC FROM TO          one phase's API calls, as JSON on stdout
  compare.py verify ENDPOINT PIPELINE_DIR           the managed set as live, checked, as JSON
  compare.py report RUNS.jsonl VERSIONS.json OUT    aggregate rounds, write OUT, print a table

time: the wall time of CMD and the CPU time (user + system) of CMD and every process it waited
for (the aws CLI processes of the script, Ansible's module processes), as JSON. CPU time is
what the tool itself spends; it moves less than wall time when the machine is shared.

calls: LOG is moto_server's stderr (one access-log line per HTTP request: the count and the
status codes); REC is moto's request recording (MOTO_ENABLE_RECORDING), one JSON object per
request with headers and body, which says which API action each request was. FROM/TO are
offsets (access-log lines, recorded requests) taken before and after the phase, while moto
is idle. A "write call" is any action not named Describe*, List*, Get*, Validate*, Estimate*
or Detect*, whether moto accepted it or not.

verify: the expected set is read from the pipeline the Tapestry run applies
(resources/infrastructure.yaml of examples/kickstart after both overlays): every stack with
its parameters and tags, every SSM parameter with its type, description and value (secrets
resolved from the same environment variables and key file the three tools read, stack
outputs and parameter ARNs from live). A tool passes when all of it is live and equal.
"""
import base64
import json
import re
import statistics
import sys
import urllib.parse

WRITE_PREFIXES = ("Describe", "List", "Get", "Validate", "Estimate", "Detect")
LOG_LINE = re.compile(r'"(GET|POST|PUT|DELETE|HEAD|PATCH) [^"]*" (\d{3}) ')


def _header(headers, name):
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return ""


def _action(entry):
    """service.Action of one recorded request (Query, JSON 1.1 or REST)."""
    headers = entry.get("headers") or {}
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", _header(headers, "authorization"))
    service = m.group(1) if m else "unsigned"
    target = _header(headers, "x-amz-target")
    if target:
        return f"{service}.{target.split('.')[-1]}"
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    form = urllib.parse.parse_qs(body) if isinstance(body, str) else {}
    if "Action" in form:
        return f"{service}.{form['Action'][0]}"
    query = urllib.parse.parse_qs(urllib.parse.urlparse(entry.get("url", "")).query)
    if "Action" in query:
        return f"{service}.{query['Action'][0]}"
    path = urllib.parse.urlparse(entry.get("url", "")).path
    return f"{service}.{entry.get('method', '?')} {path}"


def cmd_time(out, cmd):
    import resource
    import subprocess
    import time

    with open(out, "wb") as f:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        t1 = time.monotonic()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    json.dump({"wall_s": round(t1 - t0, 3), "cpu_s": round(cpu, 3), "rc": rc}, sys.stdout)
    print()


def _records(path):
    """Every recorded request, in order. moto's threads append one JSON object and then a
    newline each, so under concurrent requests two objects can share a line (with the
    newlines after them): objects are read one after the other, not line by line. There is
    still one newline per object, so line counts taken while moto is idle are offsets."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    decoder = json.JSONDecoder()
    out = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)


def cmd_calls(log, lfrom, lto, rec, rfrom, rto):
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    statuses = []
    n = 0
    for line in lines:
        m = LOG_LINE.search(line)
        if not m:
            continue
        n += 1
        if int(lfrom) < n <= int(lto):
            statuses.append(int(m.group(2)))
    entries = _records(rec)[int(rfrom):int(rto)]
    actions = {}
    for e in entries:
        a = _action(e)
        actions[a] = actions.get(a, 0) + 1
    writes = sum(c for a, c in actions.items()
                 if not a.split(".", 1)[1].startswith(WRITE_PREFIXES))
    json.dump({"calls": len(statuses), "recorded": len(entries),
               "errors": sum(1 for s in statuses if s >= 400), "writes": writes,
               "actions": dict(sorted(actions.items()))}, sys.stdout)
    print()


# ------------------------------------------------------------------------------- verify
def _norm_list(v):
    """moto answers a List<...> stack parameter as "['a', 'b']"; AWS as "a,b"."""
    v = str(v).strip()
    if v.startswith("[") and v.endswith("]"):
        v = ",".join(x.strip().strip("'\"") for x in v[1:-1].split(","))
    return v


def cmd_verify(endpoint, pipeline):
    import os

    import boto3
    import yaml

    with open(os.path.join(pipeline, "resources", "infrastructure.yaml"), encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kw = dict(endpoint_url=endpoint, region_name="us-east-1")
    cfn = boto3.client("cloudformation", **kw)
    ssm = boto3.client("ssm", **kw)
    problems = []
    live_stacks = {}
    by_name = {}
    for d in docs:
        if d["kind"] == "aws.stack":
            name = d["spec"]["stack_name"]
            try:
                s = cfn.describe_stacks(StackName=name)["Stacks"][0]
            except Exception as e:  # noqa: BLE001 - reported, not raised
                problems.append(f"stack {name}: {e}")
                continue
            live_stacks[d["name"]] = s
    arns = {}
    for d in docs:
        if d["kind"] == "aws.ssm_parameter":
            by_name[d["name"]] = d
            try:
                arns[d["name"]] = ssm.get_parameter(Name=d["spec"]["name"])["Parameter"]["ARN"]
            except Exception as e:  # noqa: BLE001
                problems.append(f"parameter {d['spec']['name']}: {e}")

    def stack_output(address, key):
        """A live stack output; for a stack without Outputs (moto does not fill them in for a
        stack created through a change set) the physical id of the resource a `!Ref` output
        names, which is what AWS would return."""
        s = live_stacks.get(address, {})
        outs = {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}
        if key in outs:
            return outs[key]
        spec = next(d["spec"] for d in docs if d["kind"] == "aws.stack" and d["name"] == address)
        with open(os.path.join(pipeline, spec["template"]), encoding="utf-8") as f:
            ref = re.search(r"^  %s:\n(?:    .*\n)*?    Value: !Ref (\w+)$" % re.escape(key), f.read(), re.M)
        if not ref or not s:
            return "<missing output>"
        res = cfn.describe_stack_resource(StackName=s["StackName"], LogicalResourceId=ref.group(1))
        return res["StackResourceDetail"]["PhysicalResourceId"]

    def resolve(v):
        v = str(v)
        m = re.fullmatch(r"\$\{secret:env:([^}]+)\}", v)
        if m:
            return os.environ.get(m.group(1), "")
        m = re.fullmatch(r"\$\{secret:file:([^}]+)\}", v)
        if m:
            with open(m.group(1), encoding="utf-8") as f:
                t = f.read()
            return t[:-1] if t.endswith("\n") else t
        m = re.fullmatch(r"\$\{aws\.stack/([^.]+)\.outputs\.([^}]+)\}", v)
        if m:
            return stack_output(m.group(1), m.group(2))
        m = re.fullmatch(r"\$\{aws\.ssm_parameter/([^.]+)\.arn\}", v)
        if m:
            return arns.get(m.group(1), "<missing parameter>")
        return v

    report = {"stacks": {}, "parameters": {}}
    for d in docs:
        spec = d["spec"]
        if d["kind"] == "aws.stack":
            s = live_stacks.get(d["name"])
            if not s:
                continue
            status = s["StackStatus"]
            if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
                problems.append(f"stack {spec['stack_name']}: {status}")
            params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in s.get("Parameters", [])}
            for k, v in spec.get("parameters", {}).items():
                if _norm_list(params.get(k, "<unset>")) != resolve(v):
                    problems.append(f"stack {spec['stack_name']}: {k}={params.get(k)!r}, want {resolve(v)!r}")
            tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
            for k, v in spec.get("tags", {}).items():
                if tags.get(k) != v:
                    problems.append(f"stack {spec['stack_name']}: tag {k}={tags.get(k)!r}, want {v!r}")
            res = cfn.list_stack_resources(StackName=spec["stack_name"])["StackResourceSummaries"]
            report["stacks"][spec["stack_name"]] = {"status": status, "resources": len(res),
                                                    "outputs": len(s.get("Outputs", []))}
        elif d["kind"] == "aws.ssm_parameter":
            try:
                p = ssm.get_parameter(Name=spec["name"], WithDecryption=True)["Parameter"]
            except Exception as e:  # noqa: BLE001
                problems.append(f"parameter {spec['name']}: {e}")
                continue
            meta = ssm.describe_parameters(
                ParameterFilters=[{"Key": "Name", "Values": [spec["name"]]}])["Parameters"][0]
            if p["Type"] != spec.get("type", "String"):
                problems.append(f"parameter {spec['name']}: type {p['Type']}")
            if p["Value"] != resolve(spec["value"]):
                problems.append(f"parameter {spec['name']}: value differs")
            if meta.get("Description", "") != spec.get("description", ""):
                problems.append(f"parameter {spec['name']}: description {meta.get('Description')!r}")
            report["parameters"][spec["name"]] = {"type": p["Type"], "version": p["Version"]}
    want_stacks = sum(1 for d in docs if d["kind"] == "aws.stack")
    want_params = sum(1 for d in docs if d["kind"] == "aws.ssm_parameter")
    all_params = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/", Recursive=True):
        all_params += [p["Name"] for p in page["Parameters"] if not p["Name"].startswith("/aws/")]
    report.update({
        "ok": not problems and len(report["stacks"]) == want_stacks
        and len(report["parameters"]) == want_params,
        "expected": {"stacks": want_stacks, "parameters": want_params},
        "live_parameters_total": len(all_params),
        "parameter_versions": sorted({v["version"] for v in report["parameters"].values()}),
        "problems": problems,
    })
    json.dump(report, sys.stdout)
    print()


# ------------------------------------------------------------------------------- report
TOOLS = [("tapestry", "Tapestry (tapestry apply)"),
         ("imperative", "shell: aws cloudformation deploy + ssm put-parameter"),
         ("ansible", "Ansible: amazon.aws.cloudformation + community.aws.ssm_parameter")]


def cmd_report(runs_path, versions_path, out_path):
    with open(runs_path, encoding="utf-8") as f:
        runs = [json.loads(x) for x in f if x.strip()]
    with open(versions_path, encoding="utf-8") as f:
        context = json.load(f)
    med = statistics.median
    tools = {}
    for tool, label in TOOLS:
        row = {"label": label}
        for phase in ("cold", "noop"):
            rs = [r for r in runs if r["tool"] == tool and r["phase"] == phase]
            if not rs:
                continue
            walls = [r["wall_s"] for r in rs]
            cpus = [r["cpu_s"] for r in rs]
            calls = [r["calls"] for r in rs]
            row[phase] = {
                "wall_s": round(med(walls), 3), "wall_s_min": round(min(walls), 3),
                "wall_s_max": round(max(walls), 3), "cpu_s": round(med(cpus), 3),
                "cpu_s_min": round(min(cpus), 3), "cpu_s_max": round(max(cpus), 3), "calls": med(calls),
                "calls_min": min(calls), "calls_max": max(calls),
                "writes": med([r["writes"] for r in rs]), "errors": med([r["errors"] for r in rs]),
                "changed": rs[-1].get("changed"), "actions": rs[-1]["actions"],
                "verified": all(r.get("verified", True) for r in rs),
                "parameter_versions": rs[-1].get("parameter_versions"),
            }
        tools[tool] = row
    base = tools.get("tapestry", {})
    for tool, row in tools.items():
        for phase in ("cold", "noop"):
            if phase in row and phase in base:
                b = base[phase]
                row[phase]["wall_ratio"] = round(row[phase]["wall_s"] / b["wall_s"], 2) if b["wall_s"] else None
                row[phase]["cpu_ratio"] = round(row[phase]["cpu_s"] / b["cpu_s"], 2) if b["cpu_s"] else None
                row[phase]["calls_ratio"] = round(row[phase]["calls"] / b["calls"], 2) if b["calls"] else None
    rounds = max((r["round"] for r in runs), default=0)
    managed = dict(runs[0]["managed_set"]) if runs else {}
    managed.pop("network", None)
    managed["source"] = ("examples/kickstart: resources/infrastructure.yaml and templates/, after "
                         "scripts/demo/overlay.py and bench/compare/moto_overlay.py")
    doc = {"benchmark": "compare", "rounds": rounds, "statistic": "median over rounds",
           "machine": context.get("machine", {}), "versions": context.get("versions", context),
           "managed_set": managed, "tools": tools, "runs": runs}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

    def fmt(row, phase, key, nd=2):
        v = row.get(phase, {}).get(key)
        if v is None:
            return "-"
        return f"{v:.{nd}f}" if isinstance(v, float) else str(v)

    head = ("tool", "cold s", "cold cpu s", "cold calls", "no-op s", "no-op cpu s", "no-op calls",
            "cold s ×", "cold calls ×", "no-op s ×", "no-op calls ×")
    rows = []
    for tool, _ in TOOLS:
        row = tools.get(tool)
        if not row:
            continue
        rows.append((tool, fmt(row, "cold", "wall_s", 3), fmt(row, "cold", "cpu_s", 3),
                     fmt(row, "cold", "calls"), fmt(row, "noop", "wall_s", 3),
                     fmt(row, "noop", "cpu_s", 3), fmt(row, "noop", "calls"),
                     fmt(row, "cold", "wall_ratio"), fmt(row, "cold", "calls_ratio"),
                     fmt(row, "noop", "wall_ratio"), fmt(row, "noop", "calls_ratio")))
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
    print(f"median of {rounds} round(s); cpu = user+system time of the tool's processes; "
          "calls = HTTP requests moto served; "
          "× = the tool's figure divided by Tapestry's")
    for tool, _ in TOOLS:
        row = tools.get(tool)
        if not row:
            continue
        print(f"  {tool}:")
        for phase, name in (("cold", "cold "), ("noop", "no-op")):
            p = row.get(phase)
            if not p:
                continue
            said = p.get("changed")
            said = (f", changed={said}" if isinstance(said, int)
                    else f", said \"{said}\"" if said else "")
            print(f"    {name} wall {p['wall_s_min']:.3f}-{p['wall_s_max']:.3f} s, cpu "
                  f"{p['cpu_s_min']:.3f}-{p['cpu_s_max']:.3f} s (x{p['cpu_ratio']}), calls "
                  f"{p['calls_min']}-{p['calls_max']}, write calls {p['writes']:g} "
                  f"(answered 4xx: {p['errors']:g}){said}")
        print(f"    SSM parameter versions after the no-op run: "
              f"{row.get('noop', {}).get('parameter_versions')}; set verified live: "
              f"{all(row[p]['verified'] for p in ('cold', 'noop') if p in row)}")


def main(argv):
    if len(argv) >= 4 and argv[1] == "time":
        return cmd_time(argv[2], argv[3:])
    if len(argv) >= 2 and argv[1] == "calls" and len(argv) == 8:
        return cmd_calls(*argv[2:8])
    if len(argv) == 4 and argv[1] == "verify":
        return cmd_verify(argv[2], argv[3])
    if len(argv) == 5 and argv[1] == "report":
        return cmd_report(*argv[2:5])
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
