#!/usr/bin/env python3
"""The reliability harnesses' second commit: the kickstart pipeline (as scripts/demo/stack.sh
makes it) with work for every provider, so that alternating between it and the full pipeline
gives every apply creates, updates and deletes on AWS, Snowflake, Airbyte and Grouparoo.

  variant.py REPO

Edits REPO's work tree in place (the caller commits). Every edit is an exact replacement
that fails loudly when the pipeline changes. Removed: the Grouparoo objects but the model
(resources/syncing.yaml, when present), the Zoom source and its connection, and two
Snowflake grants on RAW.ZOOM; changed: both stacks' parameters (the Airbyte host's instance
type, Grouparoo's worker count), an SSM parameter's description, the TRANSFORMING
warehouse's size and the Salesforce connection's schedule; added (and so deleted on the way
back): a small CloudFormation stack and an SSM parameter, AWS's own creates and deletes
(every kickstart parameter is retained, and both kickstart stacks stay). Fewer than a
quarter of the resources are removed, so the prune guard lets it through.
"""
import os
import sys

repo = sys.argv[1]


def docs_of(rel):
    with open(os.path.join(repo, rel), encoding="utf-8") as f:
        return f.read().split("\n---\n")


def write(rel, docs):
    with open(os.path.join(repo, rel), "w", encoding="utf-8") as f:
        f.write("\n---\n".join(docs))


def drop(rel, names):
    docs = docs_of(rel)
    keep = [d for d in docs if not any(f"kind: {k}\nname: {n}\n" in d for k, n in names)]
    if len(docs) - len(keep) != len(names):
        sys.exit(f"variant: {rel} changed: expected to remove {names}")
    write(rel, keep)


def edit(rel, old, new):
    path = os.path.join(repo, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.count(old) != 1:
        sys.exit(f"variant: {rel} changed: {old!r} is not there exactly once")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new))


syncing = "resources/syncing.yaml"
if os.path.exists(os.path.join(repo, syncing)):
    # everything but the model: deleting a Grouparoo model waits for its worker to remove
    # the model's records (about a minute on the embedded server), far longer than the rest
    drop(syncing, [("grouparoo.app", "snowflake"), ("grouparoo.app", "mailchimp"),
                   ("grouparoo.source", "email-model"), ("grouparoo.property", "email"),
                   ("grouparoo.property", "first-name"), ("grouparoo.property", "last-name"),
                   ("grouparoo.group", "webinar-and-sales-contacts"),
                   ("grouparoo.destination", "mailchimp")])
edit("resources/infrastructure.yaml", '    WorkerCount: "1"\n', '    WorkerCount: "2"\n')
edit("resources/infrastructure.yaml", "    InstanceType: t3.xlarge\n", "    InstanceType: t3.2xlarge\n")
edit("resources/infrastructure.yaml",
     "  description: S3 bucket the Airbyte Snowflake destination stages bulk loads in\n",
     "  description: S3 bucket the Airbyte Snowflake destination stages bulk loads in (v2)\n")
drop("resources/ingestion.yaml", [("airbyte.source", "zoom"), ("airbyte.connection", "zoom-to-snowflake")])
edit("resources/ingestion.yaml", 'cron: "0 0 */6 * * ?"', 'cron: "0 0 */4 * * ?"')
# the model's ordering on the Zoom connection goes with it (the view itself is unchanged)
edit("resources/transformation.yaml", "  - airbyte.connection/zoom-to-snowflake\n", "")
drop("resources/warehouse.yaml", [("snowflake.grant", "transformer-raw-zoom-tables"),
                                  ("snowflake.grant", "transformer-raw-zoom-future-tables")])
edit("resources/warehouse.yaml",
     "name: transforming\nspec:\n  name: TRANSFORMING\n  warehouse_size: XSMALL\n",
     "name: transforming\nspec:\n  name: TRANSFORMING\n  warehouse_size: SMALL\n")

# AWS objects only B has: a stack (one SSM parameter inside) and a parameter
with open(os.path.join(repo, "templates/reliability-probe.yaml"), "w", encoding="utf-8") as f:
    f.write("""AWSTemplateFormatVersion: "2010-09-09"
Description: A stack that only the reliability harnesses' second commit has.
Parameters:
  Note:
    Type: String
Resources:
  Marker:
    Type: AWS::SSM::Parameter
    Properties:
      Name: /reliability-probe/stack-marker   # outside /rainshield: the stack owns it
      Type: String
      Value: !Ref Note
Outputs:
  MarkerName:
    Value: !Ref Marker
""")
with open(os.path.join(repo, "resources/reliability.yaml"), "w", encoding="utf-8") as f:
    f.write("""# Only in the reliability harnesses' second commit: AWS creates going to it, deletes back.
kind: aws.stack
name: reliability-probe
spec:
  stack_name: rainshield-reliability-probe
  template: templates/reliability-probe.yaml
  parameters:
    Note: variant B
  tags: {project: rainshield, phase: reliability}
---
kind: aws.ssm_parameter
name: reliability-probe
spec:
  name: /rainshield/reliability/probe
  type: String
  value: ${aws.stack/reliability-probe.outputs.MarkerName}
  description: Written by the reliability harnesses' second commit
""")
