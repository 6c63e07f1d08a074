#!/usr/bin/env python3
"""The benchmark's second overlay, applied after scripts/demo/overlay.py to the copy of
examples/kickstart that all three tools build: it makes the two templates' parameters ones
moto can compare, so that an update with nothing new gets moto's "No updates are to be
performed." as it would get AWS's.

Why: moto decides "no updates" (for UpdateStack and CreateChangeSet alike) by comparing the
incoming parameters, as strings, with the stack's *resolved* parameters: a Number parameter is
stored as an int, a List<...> one as a Python list, an AWS::SSM::Parameter::Value<...> one as
the value it resolved, and defaults that were not passed are included. With the kickstart
templates as they are, every second `aws cloudformation deploy` or Ansible run therefore
really updates both stacks on moto (and the CLI's change set, which sends UsePreviousValue for
the AMI parameter, makes moto fail with a 500), which AWS would not do. Tapestry does not ask
CloudFormation to find out (it compares Git with what it applied) and is unaffected.

The edits keep every resource and property; only parameter types move:
  - LatestAmiId: a plain String holding the AMI id moto resolves the public
    /aws/service/ami-amazon-linux-latest/... parameter to, passed explicitly by every tool;
  - LoadBalancerSubnetIds / SubnetIds: a comma-separated String, split where it is used
    (!Split), instead of List<AWS::EC2::Subnet::Id>;
  - VolumeSize and WorkerCount (Number): fixed in the template (100 GiB, 1 worker), because
    moto's EC2 and ECS models need numbers there and a String parameter would hand them text.

  moto_overlay.py SET_DIR AMI_ID
"""
import os
import sys

set_dir, ami = sys.argv[1:3]


def edit(rel, pairs):
    path = os.path.join(set_dir, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for old, new, count in pairs:
        if text.count(old) != count:
            sys.exit(f"moto_overlay: {rel} changed: {old!r} found {text.count(old)} times, want {count}")
        text = text.replace(old, new)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


edit("templates/airbyte.yaml", [
    ("    Type: AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>\n"
     "    Default: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64\n",
     "    Type: String   # bench/compare: the id moto resolves the public parameter to\n"
     f"    Default: {ami}\n", 1),
    ("  VolumeSize:\n    Type: Number\n    Default: 100\n    MinValue: 30\n"
     "    Description: GiB of gp3 storage for Docker images, connector logs and sync state.\n", "", 1),
    ("            VolumeSize: !Ref VolumeSize\n", "            VolumeSize: 100\n", 1),
    ("  LoadBalancerSubnetIds:\n    Type: List<AWS::EC2::Subnet::Id>\n",
     "  LoadBalancerSubnetIds:\n    Type: String   # bench/compare: comma-separated, split below\n", 1),
    ("      Subnets: !Ref LoadBalancerSubnetIds\n",
     "      Subnets: !Split [\",\", !Ref LoadBalancerSubnetIds]\n", 1),
])
edit("templates/grouparoo.yaml", [
    ("  SubnetIds:\n    Type: List<AWS::EC2::Subnet::Id>\n",
     "  SubnetIds:\n    Type: String   # bench/compare: comma-separated, split where used\n", 1),
    ("SubnetIds: !Ref SubnetIds\n", "SubnetIds: !Split [\",\", !Ref SubnetIds]\n", 2),
    ("Subnets: !Ref SubnetIds\n", "Subnets: !Split [\",\", !Ref SubnetIds]\n", 3),
    ("  WorkerCount:\n    Type: Number\n    Default: 1\n    MinValue: 0\n"
     "    Description: Number of worker tasks (0 pauses imports and exports).\n", "", 1),
    ("      DesiredCount: !Ref WorkerCount\n", "      DesiredCount: 1\n", 1),
])
edit("resources/infrastructure.yaml", [
    ('    VolumeSize: "100"\n', f"    LatestAmiId: {ami}\n", 1),
    ('    WorkerCount: "1"\n', "", 1),
])
