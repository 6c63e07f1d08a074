# The reliability harnesses' verdict on one moment: what the live backends hold against what
# Tapestry's state says it manages. Input (one object):
#   {"state":    [{address, kind, provider_id, status}]      # tapestry status --json
#    "applied":  {address: applied spec}                     # the state database, read-only
#    "live":     {aws: {stacks: [{id,name,status,owner}], ssm: [names]},
#                 snowflake: <GET /fake/catalog>,
#                 airbyte: {sources, destinations, connections: [...]},
#                 grouparoo: {models, apps, sources, properties, groups, destinations: [...]}},
#    "pipeline": "rainshield",
#    "bootstrap_ssm": [names the stack created before the pipeline]}
# Output: {"violations": [{"type","provider","what"}], "live": {provider: objects counted}}.
#   duplicate  two live objects for one identity (Airbyte or Grouparoo name, Snowflake grant,
#              a stack owner tag)
#   orphan     a live object Tapestry made (or one in the pipeline's namespace) that the state
#              does not know
#   missing    the state records an object that is not live
#   unsettled  a state row still "creating" (an interrupted create nobody resolved)

def dups(f): group_by(f) | map(select(length > 1) | {key: (.[0] | f), n: length});
def marker_addr: (.comment // "") | capture("\\[managed by tapestry:(?<p>[^:]+):(?<a>[^ \\]]+)") // null;

. as $in
| $in.state as $state
| $in.applied as $applied
| $in.live as $live
| ($state | map({(.address): .}) | add // {}) as $by_addr
| def known($kind): [$state[] | select(.kind == $kind) | .provider_id]; .

# ---------------------------------------------------------------- AWS
| ($live.aws.stacks | map(select(.status != "DELETE_COMPLETE"))) as $stacks
| [
    ($stacks | dups(.name)[] | {type: "duplicate", provider: "aws", what: "stack name \(.key) x\(.n)"}),
    ($stacks | map(select(.owner != null)) | dups(.owner)[]
      | {type: "duplicate", provider: "aws", what: "stacks owned by \(.key) x\(.n)"}),
    ($stacks[] | select(.id as $id | known("aws.stack") | index($id) | not)
      | {type: "orphan", provider: "aws", what: "stack \(.name) \(.status) \(.id)"}),
    ($live.aws.ssm[] | select(. as $n | (known("aws.ssm_parameter") | index($n) | not)
                                   and ($in.bootstrap_ssm | index($n) | not))
      | {type: "orphan", provider: "aws", what: "SSM parameter \(.)"}),
    (known("aws.stack")[] | select(. as $id | $stacks | map(.id) | index($id) | not)
      | {type: "missing", provider: "aws", what: "stack \(.)"}),
    (known("aws.ssm_parameter")[] | select(. as $n | $live.aws.ssm | index($n) | not)
      | {type: "missing", provider: "aws", what: "SSM parameter \(.)"})
  ] as $aws

# ---------------------------------------------------------------- Snowflake
| $live.snowflake as $c
| ([($c.warehouses // {} | to_entries[] | {kind: "warehouse", id: .key, v: .value}),
    ($c.roles // {} | to_entries[] | {kind: "role", id: .key, v: .value}),
    ($c.users // {} | to_entries[] | {kind: "user", id: .key, v: .value}),
    ($c.databases // {} | to_entries[] | . as $d
      | ({kind: "database", id: $d.key, v: $d.value},
         ($d.value.schemas // {} | to_entries[] | . as $s
          | ({kind: "schema", id: "\($d.key).\($s.key)", v: $s.value},
             ($s.value.views // {} | to_entries[]
              | {kind: "view", id: "\($d.key).\($s.key).\(.key)", v: .value})))))]
   | map(. + {m: (.v | marker_addr)}) | map(select(.m != null and .m.p == $in.pipeline)))
  as $sf_owned
| ([$state[] | select(.kind == "snowflake.role") | .provider_id]) as $sf_roles
| ([$state[] | select(.kind == "snowflake.grant") | $applied[.address] // empty
    | . as $g | .privileges[] | {role: $g.role, priv: ., type: $g.on.type, name: $g.on.name,
                                 future: ($g.on.future // null), all: ($g.on.all // null)}])
  as $sf_grants
| ([$state[] | select(.kind == "snowflake.role_grant") | $applied[.address] // empty
    | {role, to: (if .to_role then "ROLE " + .to_role else "USER " + .to_user end)}])
  as $sf_role_grants
| [
    ($sf_owned | dups(.m.a)[] | {type: "duplicate", provider: "snowflake",
                                 what: "objects marked \(.key) x\(.n)"}),
    ($sf_owned[] | select(($by_addr[.m.a].provider_id // null) != .id)
      | {type: "orphan", provider: "snowflake", what: "\(.kind) \(.id) (marked \(.m.a))"}),
    ($c.grants // [] | dups([.privilege, .granted_on, .name, .grantee])[]
      | {type: "duplicate", provider: "snowflake", what: "grant \(.key | join(" ")) x\(.n)"}),
    ($c.grants // [] | .[] | select(.grantee as $r | $sf_roles | index($r))
      | select(. as $g | $sf_grants | any(. as $s | $s.role == $g.grantee
          and $s.priv == $g.privilege and $s.future == null
          and (($s.all == null and $s.type == $g.granted_on and $s.name == $g.name)
               or ($s.all != null and ($s.all | rtrimstr("S")) == $g.granted_on
                   and ($g.name | startswith($s.name + "."))))) | not)
      | {type: "orphan", provider: "snowflake",
         what: "grant \(.privilege) on \(.granted_on) \(.name) to \(.grantee)"}),
    ($c.future_grants // [] | .[] | select(.grantee as $r | $sf_roles | index($r))
      | select(. as $g | $sf_grants | any(.future != null and .role == $g.grantee
          and .priv == $g.privilege and .name == $g.scope) | not)
      | {type: "orphan", provider: "snowflake",
         what: "future grant \(.privilege) on \(.grant_on)s in \(.scope) to \(.grantee)"}),
    ($c.role_grants // [] | dups([.role, .granted_to, .grantee])[]
      | {type: "duplicate", provider: "snowflake", what: "role grant \(.key | join(" ")) x\(.n)"}),
    ($c.role_grants // [] | .[] | select(.role as $r | $sf_roles | index($r))
      | select(. as $g | $sf_role_grants
          | any(.role == $g.role and .to == "\($g.granted_to) \($g.grantee)") | not)
      | {type: "orphan", provider: "snowflake",
         what: "role grant \(.role) to \(.granted_to) \(.grantee)"}),
    ($state[] | select(.kind | IN("snowflake.warehouse", "snowflake.role", "snowflake.user",
                                  "snowflake.database", "snowflake.schema", "snowflake.view"))
      | select(.provider_id as $id | $sf_owned | map(.id) | index($id) | not)
      | {type: "missing", provider: "snowflake", what: "\(.address) \(.provider_id)"})
  ] as $snowflake

# ---------------------------------------------------------------- Airbyte
| [
    ({k: "sources", kind: "airbyte.source", id: "sourceId"},
     {k: "destinations", kind: "airbyte.destination", id: "destinationId"},
     {k: "connections", kind: "airbyte.connection", id: "connectionId"}) as $t
    | ($live.airbyte[$t.k] // []) as $objs
    | (($objs | dups(.name)[] | {type: "duplicate", provider: "airbyte",
                                 what: "\($t.k): \(.n) named \(.key)"}),
       ($objs[] | select(.[$t.id] as $id | known($t.kind) | index($id) | not)
        | {type: "orphan", provider: "airbyte", what: "\($t.k) \(.name) \(.[$t.id])"}),
       (known($t.kind)[] | select(. as $id | $objs | map(.[$t.id]) | index($id) | not)
        | {type: "missing", provider: "airbyte", what: "\($t.k) \(.)"}))
  ] as $airbyte

# ---------------------------------------------------------------- Grouparoo
| [
    ({k: "models", kind: "grouparoo.model", by: "name"},
     {k: "apps", kind: "grouparoo.app", by: "name"},
     {k: "sources", kind: "grouparoo.source", by: "name"},
     {k: "properties", kind: "grouparoo.property", by: "key"},
     {k: "groups", kind: "grouparoo.group", by: "name"},
     {k: "destinations", kind: "grouparoo.destination", by: "name"}) as $t
    | ($live.grouparoo[$t.k] // [] | map(select(.state != "deleted"))) as $objs
    | (($objs | dups(.[$t.by])[] | {type: "duplicate", provider: "grouparoo",
                                    what: "\($t.k): \(.n) with \($t.by) \(.key)"}),
       ($objs[] | select(.id as $id | known($t.kind) | index($id) | not)
        | {type: "orphan", provider: "grouparoo",
           what: "\($t.k) \(.[$t.by]) \(.id) (\(.state))"}),
       (known($t.kind)[] | select(. as $id | $objs | map(.id) | index($id) | not)
        | {type: "missing", provider: "grouparoo", what: "\($t.k) \(.)"}))
  ] as $grouparoo

| {
    violations: ($aws + $snowflake + $airbyte + $grouparoo
                 + [$state[] | select(.status != "ready")
                    | {type: "unsettled", provider: (.kind | split(".")[0]),
                       what: "\(.address) is \(.status)"}]),
    live: {
      aws: (($stacks | length) + ($live.aws.ssm | length)),
      snowflake: (($sf_owned | length) + ($c.grants // [] | length)
                  + ($c.future_grants // [] | length) + ($c.role_grants // [] | length)),
      airbyte: ([$live.airbyte[]] | add | length),
      grouparoo: ([$live.grouparoo[] | map(select(.state != "deleted"))] | add | length)
    }
  }
