#!/usr/bin/env python3
"""The demo overlay: the few edits that let examples/kickstart run against the embedded
backends on 127.0.0.1. Applied by scripts/demo.sh to its own copy; examples/kickstart is
never touched. Every edit is an exact replacement that fails loudly when the example changes.

  overlay.py REPO VPC SUBNET1 SUBNET2 ZONE KEYDIR WAREHOUSE_FILE|- 

With WAREHOUSE_FILE "-" (Grouparoo unavailable) the syncing side is left out of the demo.
"""
import os
import sys

repo, vpc, s1, s2, zone, keydir, wfile = sys.argv[1:8]
here = os.path.dirname(os.path.abspath(__file__))


def edit(rel, pairs):
    path = os.path.join(repo, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for old, new in pairs:
        if old not in text:
            sys.exit(f"overlay: examples/kickstart changed: {old!r} not in {rel}")
        text = text.replace(old, new)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# 1. Tapestry's own Snowflake key: a key generated for the demo (the fake knows its public half).
edit("tapestry.yaml", [("/etc/tapestry/snowflake_key.p8", f"{keydir}/snowflake_key.p8")])
# 2. The network the stacks go into: a VPC, two subnets and a private zone created in moto
#    (the example's ids are placeholders); the loader's key file: one generated for the demo.
edit("resources/infrastructure.yaml", [
    ("vpc-0a1b2c3d4e5f60718", vpc),
    ("subnet-0aa11bb22cc33dd44", s1),
    ("subnet-0ee55ff66aa77bb88", s2),
    ("Z0123456789ABCDEFGHIJ", zone),
    ("/etc/tapestry/rainshield/airbyte_user_key.p8", f"{keydir}/airbyte_user_key.p8"),
])
# 3. templates/grouparoo.yaml: what moto's CloudFormation cannot evaluate. moto has no
#    AWS::ElastiCache::CacheCluster and no Endpoint/MasterUserSecret attributes on
#    AWS::RDS::DBInstance, and it names the ECR repository in upper case (which ECR refuses);
#    those attributes become fixed demo values and the repository gets an explicit name.
arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo-grouparoo-db"
edit("templates/grouparoo.yaml", [
    ("    Type: AWS::ECR::Repository\n    Properties:\n",
     "    Type: AWS::ECR::Repository\n    Properties:\n"
     "      RepositoryName: !Sub \"${AWS::StackName}-images\"   # demo overlay\n"),
    ("!GetAtt Database.MasterUserSecret.SecretArn", arn),
    ("${Database.MasterUserSecret.SecretArn}", arn),
    ('!Sub "redis://${Redis.RedisEndpoint.Address}:${Redis.RedisEndpoint.Port}"',
     '"redis://grouparoo-redis.demo.internal:6379"'),
    ("!GetAtt Database.Endpoint.Address", "grouparoo-db.demo.internal"),
    ("!GetAtt Database.Endpoint.Port", '"5432"'),
])
# 4. Grouparoo: SQLite stand-ins for Snowflake reads and the Mailchimp destination.
if wfile == "-":
    os.remove(os.path.join(repo, "resources/syncing.yaml"))
else:
    with open(os.path.join(here, "syncing.yaml"), encoding="utf-8") as f:
        text = f.read().replace("@WAREHOUSE_FILE@", wfile)
    with open(os.path.join(repo, "resources/syncing.yaml"), "w", encoding="utf-8") as f:
        f.write(text)
