#!/usr/bin/env bash
# The imperative way to build the AWS part of the kickstart pipeline, as the original
# Tapestry CLI's deploy/rebuild commands did it: one `aws ssm put-parameter --overwrite` per
# parameter and one `aws cloudformation deploy` per stack, in a fixed order, every time it is
# run. Running it again is its "no-op": nothing tells it what is already there, so every
# parameter is written again (a new version each) and every stack gets a change set that
# turns out to be empty. bench/compare/run.sh times it against Tapestry and Ansible.
#
#   imperative.sh ENDPOINT SET_DIR
#
# SET_DIR holds templates/ (the kickstart templates after the benchmark's overlays),
# network.env (VPC_ID, SUBNET_1, SUBNET_2, ZONE_ID, AMI_ID) and keys/airbyte_user_key.p8.
# The secrets are the environment variables resources/infrastructure.yaml names. AWS_CLI
# picks the aws binary.
set -euo pipefail
[ $# -eq 2 ] || { sed -n '9,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
ENDPOINT=$1 SET=$2
# shellcheck source=/dev/null
. "$SET/network.env"
: "${VPC_ID:?} ${SUBNET_1:?} ${SUBNET_2:?} ${ZONE_ID:?} ${AMI_ID:?}"

aws() { "${AWS_CLI:-aws}" --endpoint-url "$ENDPOINT" --region us-east-1 --output text "$@"; }

put_param() { # NAME TYPE VALUE DESCRIPTION
	aws ssm put-parameter --name "$1" --type "$2" --value="$3" --description "$4" --overwrite >/dev/null
}

deploy() { # STACK TEMPLATE PHASE KEY=VALUE...
	local stack=$1 template=$2 phase=$3 err
	shift 3
	err=$(mktemp)
	# --no-fail-on-empty-changeset: a run with nothing to change succeeds (on AWS, the change
	# set comes back FAILED with "didn't contain changes"; moto refuses CreateChangeSet itself
	# with "No updates are to be performed.", which is the same answer and is taken as such).
	if ! aws cloudformation deploy --stack-name "$stack" --template-file "$SET/templates/$template" \
		--capabilities CAPABILITY_IAM --tags project=rainshield "phase=$phase" \
		--no-fail-on-empty-changeset --parameter-overrides "$@" >/dev/null 2>"$err"; then
		if ! grep -q "No updates are to be performed" "$err"; then
			cat "$err" >&2
			rm -f "$err"
			return 1
		fi
	fi
	rm -f "$err"
	echo "stack $stack deployed"
}

# Credentials the pipeline's tools need, exported on the operator's host.
put_param /rainshield/airbyte/s3_access_key_id SecureString "$RAINSHIELD_STAGING_ACCESS_KEY_ID" \
	"Access key id of the Airbyte S3 staging user"
put_param /rainshield/airbyte/s3_secret_access_key SecureString "$RAINSHIELD_STAGING_SECRET_ACCESS_KEY" \
	"Secret access key of the Airbyte S3 staging user"
put_param /rainshield/zoom/account_id SecureString "$ZOOM_ACCOUNT_ID" \
	"Zoom account id of the Server-to-Server OAuth app"
put_param /rainshield/zoom/client_id SecureString "$ZOOM_CLIENT_ID" \
	"Client id of the Zoom Server-to-Server OAuth app"
put_param /rainshield/zoom/client_secret SecureString "$ZOOM_CLIENT_SECRET" \
	"Client secret of the Zoom Server-to-Server OAuth app"
put_param /rainshield/salesforce/client_id SecureString "$SALESFORCE_CLIENT_ID" \
	"Consumer key of the Salesforce connected app"
put_param /rainshield/salesforce/client_secret SecureString "$SALESFORCE_CLIENT_SECRET" \
	"Consumer secret of the Salesforce connected app"
put_param /rainshield/salesforce/refresh_token SecureString "$SALESFORCE_REFRESH_TOKEN" \
	"OAuth refresh token of the Salesforce integration user"
put_param /rainshield/snowflake/loader_private_key SecureString "$(cat "$SET/keys/airbyte_user_key.p8")" \
	"PEM private key Airbyte loads into Snowflake as AIRBYTE_USER with"
put_param /rainshield/snowflake/grouparoo_password SecureString "$SNOWFLAKE_GROUPAROO_PASSWORD" \
	"Snowflake password of GROUPAROO_USER (reads ANALYTICS.MODELS)"
put_param /rainshield/grouparoo/api_key SecureString "$GROUPAROO_API_KEY" \
	"Grouparoo API key (read and write on every topic)"
put_param /rainshield/grouparoo/server_token SecureString "$GROUPAROO_SERVER_TOKEN" \
	"Grouparoo SERVER_TOKEN (signs sessions of the web UI)"
put_param /rainshield/mailchimp/api_key SecureString "$MAILCHIMP_API_KEY" \
	"Mailchimp API key used by the Grouparoo mailchimp app"
echo "13 secret parameters written"

# The Airbyte host, then the bucket name it created, published in SSM.
deploy rainshield-airbyte airbyte.yaml ingestion \
	InstanceType=t3.xlarge "LatestAmiId=$AMI_ID" "VpcId=$VPC_ID" "InstanceSubnetId=$SUBNET_1" \
	"LoadBalancerSubnetIds=$SUBNET_1,$SUBNET_2" AllowedCidr=10.0.0.0/16 \
	"PrivateHostedZoneId=$ZONE_ID" HostName=airbyte.internal
# The bucket is read from the stack's resource (what its StagingBucketName output returns):
# moto leaves Outputs empty on a stack that was created through a change set.
bucket=$(aws cloudformation describe-stack-resource --stack-name rainshield-airbyte \
	--logical-resource-id StagingBucket --query StackResourceDetail.PhysicalResourceId)
put_param /rainshield/airbyte/staging_bucket String "$bucket" \
	"S3 bucket the Airbyte Snowflake destination stages bulk loads in"
echo "staging bucket $bucket published"

# The Grouparoo service reads its two secrets by ARN.
account=$(aws sts get-caller-identity --query Account)
arn="arn:aws:ssm:us-east-1:$account:parameter"
deploy rainshield-grouparoo grouparoo.yaml syncing \
	"VpcId=$VPC_ID" "SubnetIds=$SUBNET_1,$SUBNET_2" AllowedCidr=10.0.0.0/16 \
	"PrivateHostedZoneId=$ZONE_ID" HostName=grouparoo.internal ImageTag=0.9.0 \
	"ApiKeyParameterArn=$arn/rainshield/grouparoo/api_key" \
	"ServerTokenParameterArn=$arn/rainshield/grouparoo/server_token"
