"""The `aws` target: MLflow on ECS Fargate behind an HTTPS ALB, with RDS and S3.

One module per job; `platform.AwsPlatform` wires them. Every resource gets the explicit
providers created in `providers.py` (the stacks disable default providers).
"""
