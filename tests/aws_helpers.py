"""The account and region the moto-backed tests pretend to be in (root ``aws`` fixture)."""

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/bincounter-sagemaker"
