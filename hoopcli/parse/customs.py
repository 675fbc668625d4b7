"""Hand-kept tables the generator needs where no model says it (read by generate.py only).

Everything here is small on purpose; each entry is a fact of AWS documentation or awscli code
that the machine-readable sources do not carry.
"""

from __future__ import annotations

# API operation -> IAM action(s) where the Service Authorization Reference names a different
# action and neither the action name nor its API documentation link leads there.
# Key: (botocore service, API operation). Value: actions in the service's IAM namespace.
ACTION_OVERRIDES: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "ListMultipartUploads"): ("s3:ListBucketMultipartUploads",),
    ("s3", "ListParts"): ("s3:ListMultipartUploadParts",),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("s3", "CopyObject"): ("s3:GetObject", "s3:PutObject"),
    ("s3", "UploadPartCopy"): ("s3:GetObject", "s3:PutObject"),
    ("s3", "DeleteObjects"): ("s3:DeleteObject",),
    ("s3", "GetObjectAttributes"): ("s3:GetObject", "s3:GetObjectAttributes"),
    ("s3", "SelectObjectContent"): ("s3:GetObject",),
    ("s3", "DeleteBucketCors"): ("s3:PutBucketCORS",),
    ("s3", "DeleteBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "DeleteBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
    ("s3", "GetBucketLifecycle"): ("s3:GetLifecycleConfiguration",),
    ("s3", "PutBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
    ("s3", "DeleteBucketTagging"): ("s3:PutBucketTagging",),
    ("s3", "DeleteBucketReplication"): ("s3:PutReplicationConfiguration",),
    ("s3", "DeletePublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "DeleteBucketAnalyticsConfiguration"): ("s3:PutAnalyticsConfiguration",),
    ("s3", "ListBucketAnalyticsConfigurations"): ("s3:GetAnalyticsConfiguration",),
    ("s3", "DeleteBucketInventoryConfiguration"): ("s3:PutInventoryConfiguration",),
    ("s3", "ListBucketInventoryConfigurations"): ("s3:GetInventoryConfiguration",),
    ("s3", "DeleteBucketMetricsConfiguration"): ("s3:PutMetricsConfiguration",),
    ("s3", "ListBucketMetricsConfigurations"): ("s3:GetMetricsConfiguration",),
    ("s3", "DeleteBucketIntelligentTieringConfiguration"): ("s3:PutIntelligentTieringConfiguration",),
    ("s3", "ListBucketIntelligentTieringConfigurations"): ("s3:GetIntelligentTieringConfiguration",),
    ("s3", "DeleteBucketOwnershipControls"): ("s3:PutBucketOwnershipControls",),
    ("s3", "GetBucketNotificationConfiguration"): ("s3:GetBucketNotification",),
    ("s3", "PutBucketNotificationConfiguration"): ("s3:PutBucketNotification",),
    ("budgets", "DescribeBudget"): ("budgets:ViewBudget",),
    ("budgets", "DescribeBudgets"): ("budgets:ViewBudget",),
    ("budgets", "DescribeBudgetPerformanceHistory"): ("budgets:ViewBudget",),
    ("budgets", "DescribeNotificationsForBudget"): ("budgets:ViewBudget",),
    ("budgets", "DescribeSubscribersForNotification"): ("budgets:ViewBudget",),
    ("budgets", "CreateNotification"): ("budgets:ModifyBudget",),
    ("budgets", "UpdateNotification"): ("budgets:ModifyBudget",),
    ("budgets", "DeleteNotification"): ("budgets:ModifyBudget",),
    ("lambda", "Invoke"): ("lambda:InvokeFunction",),
    ("lambda", "InvokeAsync"): ("lambda:InvokeFunction",),
    ("lambda", "InvokeWithResponseStream"): ("lambda:InvokeFunction",),
}

# awscli customizations (commands with no API model) -> the API calls they can make, as
# (botocore service, API operation). An empty list means a local-only command. A call named
# ("", "") marks a local side effect hoop cannot bound (shell access, files): access level Unknown.
LOCAL = ("", "")
CUSTOM_CALLS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("cloudformation", "package"): [("s3", "HeadObject"), ("s3", "PutObject")],
    ("cloudformation", "deploy"): [
        ("cloudformation", "DescribeStacks"), ("cloudformation", "CreateChangeSet"),
        ("cloudformation", "DescribeChangeSet"), ("cloudformation", "ExecuteChangeSet"),
        ("s3", "PutObject")],
    ("cloudfront", "sign"): [LOCAL],
    ("cloudtrail", "create-subscription"): [
        ("s3", "CreateBucket"), ("s3", "PutBucketPolicy"), ("sns", "CreateTopic"),
        ("sns", "SetTopicAttributes"), ("cloudtrail", "CreateTrail"), ("cloudtrail", "StartLogging")],
    ("cloudtrail", "update-subscription"): [
        ("s3", "CreateBucket"), ("s3", "PutBucketPolicy"), ("sns", "CreateTopic"),
        ("sns", "SetTopicAttributes"), ("cloudtrail", "UpdateTrail")],
    ("cloudtrail", "validate-logs"): [
        ("cloudtrail", "DescribeTrails"), ("cloudtrail", "ListPublicKeys"), ("s3", "ListObjects"),
        ("s3", "GetObject")],
    ("codeartifact", "login"): [
        ("codeartifact", "GetAuthorizationToken"), ("codeartifact", "GetRepositoryEndpoint"), LOCAL],
    ("codecommit", "credential-helper"): [LOCAL],
    ("datapipeline", "list-runs"): [("datapipeline", "QueryObjects"), ("datapipeline", "DescribeObjects")],
    ("datapipeline", "create-default-roles"): [
        ("iam", "GetRole"), ("iam", "CreateRole"), ("iam", "AttachRolePolicy"),
        ("iam", "CreateInstanceProfile"), ("iam", "AddRoleToInstanceProfile")],
    ("dlm", "create-default-role"): [("iam", "GetRole"), ("iam", "CreateRole"), ("iam", "AttachRolePolicy")],
    ("ecr", "get-login"): [("ecr", "GetAuthorizationToken")],
    ("ecr", "get-login-password"): [("ecr", "GetAuthorizationToken")],
    ("ecr-public", "get-login-password"): [("ecr-public", "GetAuthorizationToken")],
    ("ecs", "execute-command"): [("ecs", "ExecuteCommand"), LOCAL],
    ("ecs", "deploy"): [
        ("ecs", "DescribeServices"), ("ecs", "RegisterTaskDefinition"),
        ("codedeploy", "CreateDeployment"), ("codedeploy", "GetDeployment")],
    ("eks", "update-kubeconfig"): [("eks", "DescribeCluster"), LOCAL],
    ("eks", "get-token"): [("sts", "GetCallerIdentity")],
    ("emr", "add-instance-groups"): [("emr", "AddInstanceGroups")],
    ("emr", "describe-cluster"): [
        ("emr", "DescribeCluster"), ("emr", "ListInstanceGroups"), ("emr", "ListBootstrapActions")],
    ("emr", "terminate-clusters"): [("emr", "TerminateJobFlows")],
    ("emr", "modify-cluster-attributes"): [
        ("emr", "SetVisibleToAllUsers"), ("emr", "SetTerminationProtection")],
    ("emr", "install-applications"): [("emr", "AddJobFlowSteps")],
    ("emr", "create-cluster"): [("emr", "RunJobFlow"), ("emr", "AddTags")],
    ("emr", "add-steps"): [("emr", "AddJobFlowSteps")],
    ("emr", "restore-from-hbase-backup"): [("emr", "AddJobFlowSteps")],
    ("emr", "create-hbase-backup"): [("emr", "AddJobFlowSteps")],
    ("emr", "schedule-hbase-backup"): [("emr", "AddJobFlowSteps")],
    ("emr", "disable-hbase-backups"): [("emr", "AddJobFlowSteps")],
    ("emr", "create-default-roles"): [
        ("iam", "GetRole"), ("iam", "CreateRole"), ("iam", "AttachRolePolicy"),
        ("iam", "CreateInstanceProfile"), ("iam", "AddRoleToInstanceProfile")],
    ("emr", "ssh"): [("emr", "DescribeCluster"), LOCAL],
    ("emr", "socks"): [("emr", "DescribeCluster"), LOCAL],
    ("emr", "get"): [("emr", "DescribeCluster"), LOCAL],
    ("emr", "put"): [("emr", "DescribeCluster"), LOCAL],
    ("emr-containers", "update-role-trust-policy"): [("iam", "GetRole"), ("iam", "UpdateAssumeRolePolicy")],
    ("gamelift", "upload-build"): [
        ("gamelift", "CreateBuild"), ("gamelift", "RequestUploadCredentials"), ("s3", "PutObject")],
    ("gamelift", "get-game-session-log"): [("gamelift", "GetGameSessionLogUrl"), LOCAL],
    ("logs", "start-live-tail"): [("logs", "StartLiveTail")],
    ("logs", "tail"): [("logs", "FilterLogEvents")],                      # awscli v2
    ("rds", "generate-db-auth-token"): [LOCAL],
    ("servicecatalog", "generate"): [
        ("servicecatalog", "CreateProduct"), ("servicecatalog", "CreateProvisioningArtifact"),
        ("s3", "PutObject")],
    ("ssm", "start-session"): [("ssm", "StartSession"), LOCAL],
    ("deploy", "push"): [("s3", "PutObject"), ("codedeploy", "RegisterApplicationRevision")],
    ("deploy", "register"): [
        ("iam", "CreateUser"), ("iam", "PutUserPolicy"), ("iam", "CreateAccessKey"),
        ("codedeploy", "RegisterOnPremisesInstance"), ("codedeploy", "AddTagsToOnPremisesInstances")],
    ("deploy", "deregister"): [
        ("codedeploy", "GetOnPremisesInstance"), ("codedeploy", "DeregisterOnPremisesInstance"),
        ("iam", "DeleteUser"), ("iam", "DeleteAccessKey"), ("iam", "DeleteUserPolicy")],
    ("deploy", "install"): [LOCAL],
    ("deploy", "uninstall"): [LOCAL],
    ("configservice", "subscribe"): [
        ("s3", "CreateBucket"), ("sns", "CreateTopic"), ("config", "PutConfigurationRecorder"),
        ("config", "PutDeliveryChannel"), ("config", "StartConfigurationRecorder")],
    ("configservice", "get-status"): [
        ("config", "DescribeConfigurationRecorderStatus"), ("config", "DescribeDeliveryChannelStatus")],
    ("ddb", "select"): [("dynamodb", "Scan"), ("dynamodb", "Query")],    # awscli v2
    ("ddb", "put"): [("dynamodb", "BatchWriteItem"), ("dynamodb", "PutItem")],   # awscli v2
    ("sso", "login"): [LOCAL],                                           # awscli v2
    ("sso", "logout"): [LOCAL],                                          # awscli v2
}

# Boolean switches of the v2-only customizations above (v1 ones are read from awscli).
V2_FLAGS: dict[tuple[str, str], list[str]] = {
    ("logs", "tail"): ["follow"],
    ("sso", "login"): ["no-browser", "use-device-code"],
}

# Variables of ARN templates that name an API member by another name.
ARN_VAR_ALIASES: dict[str, str] = {"ObjectName": "Key", "ClusterId": "JobFlowId"}   # tried after the name itself
# Options of awscli customizations that give an API member under another name: (service, member)
# -> option (`emr add-steps --cluster-id` is AddJobFlowSteps' JobFlowId).
CUSTOM_OPTION_ALIASES: dict[tuple[str, str], str] = {("emr", "JobFlowId"): "cluster-id",
                                                      ("emr", "JobFlowIds"): "cluster-ids"}
