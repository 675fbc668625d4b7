"""The kept list: secrets that botocore's `sensitive` flags miss.

Each entry: (botocore service, API operation, "o" output | "i" input, paths, why). Path syntax as in
docs/masking.md: members joined by ".", `[]` for list elements, `*` for every value of a map, and an
optional sibling condition `?Member=Value` on the last segment (mask only when the dict holding the
value has that member with that value). tests/masking/test_data.py checks every path against the
botocore model, so a renamed member fails the build instead of silently unmasking.
"""

from __future__ import annotations

KEPT: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    # STS: only SecretAccessKey is flagged; the session token is as good as the key.
    *(
        ("sts", op, "o", ("Credentials.SessionToken",), "temporary credentials: the session token")
        for op in ("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot",
                   "GetSessionToken", "GetFederationToken")
    ),
    ("sso", "GetRoleCredentials", "o", ("roleCredentials.accessKeyId",),
     "kept with its secret so the triple cannot be correlated back"),
    ("ecr", "GetAuthorizationToken", "o", ("authorizationData[].authorizationToken",),
     "base64 'AWS:password' for docker login"),
    ("ecr-public", "GetAuthorizationToken", "o", ("authorizationData.authorizationToken",),
     "base64 'AWS:password' for docker login"),
    ("codeartifact", "GetAuthorizationToken", "o", ("authorizationToken",),
     "bearer token for package managers"),
    ("apigateway", "GetApiKey", "o", ("value",), "API key value (--include-value)"),
    ("apigateway", "GetApiKeys", "o", ("items[].value",), "API key values (--include-values)"),
    ("apigateway", "CreateApiKey", "o", ("value",), "API key value"),
    ("apigateway", "CreateApiKey", "i", ("value",), "API key value"),
    ("apigateway", "UpdateApiKey", "o", ("value",), "API key value"),
    ("apigateway", "ImportApiKeys", "i", ("body",), "CSV of API keys"),
    ("lambda", "GetFunction", "o", ("Configuration.Environment.Variables.*",),
     "environment values are where functions keep secrets; names stay visible"),
    ("lambda", "GetFunctionConfiguration", "o", ("Environment.Variables.*",), "as above"),
    ("ecs", "DescribeTaskDefinition", "o",
     ("taskDefinition.containerDefinitions[].environment[].value",),
     "container environment values; names stay visible"),
    ("ecs", "RegisterTaskDefinition", "o",
     ("taskDefinition.containerDefinitions[].environment[].value",), "as above"),
    ("ecs", "RegisterTaskDefinition", "i", ("containerDefinitions[].environment[].value",),
     "as above"),
    ("glue", "GetConnection", "o", ("Connection.ConnectionProperties.*",),
     "JDBC URL, USERNAME, PASSWORD, keystore passwords in one map"),
    ("glue", "GetConnections", "o", ("ConnectionList[].ConnectionProperties.*",), "as above"),
    ("glue", "CreateConnection", "i", ("ConnectionInput.ConnectionProperties.*",), "as above"),
    ("glue", "UpdateConnection", "i", ("ConnectionInput.ConnectionProperties.*",), "as above"),
    # SSM: botocore flags every parameter Value (even `String` ones such as AMI ids, which agents
    # need). Decision: mask the value of SecureString parameters only (decrypted or not); plain
    # String/StringList values are not secrets by declaration. The flag-derived path is kept in
    # the PII class, so policy can still mask every value.
    ("ssm", "GetParameter", "o", ("Parameter.Value?Type=SecureString",), "SecureString value"),
    ("ssm", "GetParameters", "o", ("Parameters[].Value?Type=SecureString",), "as above"),
    ("ssm", "GetParametersByPath", "o", ("Parameters[].Value?Type=SecureString",), "as above"),
    ("ssm", "GetParameterHistory", "o", ("Parameters[].Value?Type=SecureString",), "as above"),
    ("ssm", "PutParameter", "i", ("Value?Type=SecureString",), "SecureString value"),
    ("ec2", "CreateVpnConnection", "o", ("VpnConnection.CustomerGatewayConfiguration",),
     "device configuration XML carries the tunnel pre-shared keys"),
    ("ec2", "DescribeVpnConnections", "o", ("VpnConnections[].CustomerGatewayConfiguration",),
     "as above"),
    ("ec2", "GetVpnConnectionDeviceSampleConfiguration", "o",
     ("VpnConnectionDeviceSampleConfiguration",), "as above"),
    ("ec2", "ImportKeyPair", "i", ("PublicKeyMaterial",), "kept out of records (large, noisy)"),
    ("iam", "CreateAccessKey", "o", ("AccessKey.SecretAccessKey",), "also flagged; kept explicit"),
    ("iam", "CreateLoginProfile", "i", ("Password",), "also flagged; kept explicit"),
    ("secretsmanager", "GetSecretValue", "o", ("SecretString", "SecretBinary"),
     "also flagged; kept explicit"),
    ("secretsmanager", "PutSecretValue", "i", ("SecretString", "SecretBinary"),
     "also flagged; kept explicit"),
    ("kms", "Decrypt", "o", ("Plaintext",), "also flagged; kept explicit"),
    ("kms", "GenerateDataKey", "o", ("Plaintext",), "also flagged; kept explicit"),
    ("rds", "CreateDBInstance", "i", ("MasterUserPassword",), "also flagged; kept explicit"),
    ("redshift", "GetClusterCredentials", "o", ("DbPassword",), "also flagged; kept explicit"),
    ("cognito-idp", "InitiateAuth", "o",
     ("AuthenticationResult.AccessToken", "AuthenticationResult.IdToken",
      "AuthenticationResult.RefreshToken"), "also flagged; kept explicit"),
    ("cognito-identity", "GetCredentialsForIdentity", "o",
     ("Credentials.SecretKey", "Credentials.SessionToken"), "temporary credentials"),
    ("cognito-identity", "GetOpenIdToken", "o", ("Token",), "OpenID token"),
    ("cognito-identity", "GetOpenIdTokenForDeveloperIdentity", "o", ("Token",), "OpenID token"),
    ("lightsail", "GetInstanceAccessDetails", "o",
     ("accessDetails.password", "accessDetails.privateKey", "accessDetails.certKey"),
     "SSH/RDP access details"),
    ("lightsail", "CreateKeyPair", "o", ("privateKeyBase64",), "generated private key"),
    ("lightsail", "GetRelationalDatabaseMasterUserPassword", "o", ("masterUserPassword",),
     "database password"),
    ("mq", "CreateUser", "i", ("Password",), "broker user password"),
    ("mq", "UpdateUser", "i", ("Password",), "broker user password"),
    ("docdb", "CreateDBCluster", "i", ("MasterUserPassword",), "also flagged; kept explicit"),
    ("elasticache", "CreateUser", "i", ("Passwords[]",), "user passwords"),
    ("elasticache", "ModifyUser", "i", ("Passwords[]",), "user passwords"),
    ("opensearch", "CreateDomain", "i",
     ("AdvancedSecurityOptions.MasterUserOptions.MasterUserPassword",), "also flagged; kept"),
    ("iot", "CreateKeysAndCertificate", "o", ("keyPair.PrivateKey",), "generated private key"),
    ("iot", "CreateProvisioningClaim", "o", ("keyPair.PrivateKey",), "generated private key"),
    ("acm", "ExportCertificate", "o", ("PrivateKey",), "exported private key"),
    ("acm", "ExportCertificate", "i", ("Passphrase",), "passphrase of the exported key"),
    # CodeBuild and Batch environment values (issue 15): where builds and jobs keep secrets,
    # like Lambda's and ECS's; names stay visible.
    ("codebuild", "BatchGetProjects", "o", ("projects[].environment.environmentVariables[].value",),
     "build environment values; names stay visible"),
    ("codebuild", "CreateProject", "i", ("environment.environmentVariables[].value",), "as above"),
    ("codebuild", "CreateProject", "o", ("project.environment.environmentVariables[].value",), "as above"),
    ("codebuild", "UpdateProject", "i", ("environment.environmentVariables[].value",), "as above"),
    ("codebuild", "UpdateProject", "o", ("project.environment.environmentVariables[].value",), "as above"),
    ("codebuild", "StartBuild", "i", ("environmentVariablesOverride[].value",), "as above"),
    ("codebuild", "StartBuild", "o", ("build.environment.environmentVariables[].value",), "as above"),
    ("codebuild", "BatchGetBuilds", "o", ("builds[].environment.environmentVariables[].value",), "as above"),
    ("batch", "DescribeJobDefinitions", "o",
     ("jobDefinitions[].containerProperties.environment[].value",), "job environment values"),
    ("batch", "RegisterJobDefinition", "i", ("containerProperties.environment[].value",), "as above"),
    ("batch", "SubmitJob", "i", ("containerOverrides.environment[].value",), "as above"),
    ("batch", "DescribeJobs", "o", ("jobs[].container.environment[].value",), "as above"),
)
