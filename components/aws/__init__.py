"""The `aws` target: MLflow on ECS Fargate behind an HTTPS ALB, with RDS and S3.

The folder says which file is which:
- `components/aws/*.py`: components, one module each, every class
  `Component(name, args: ComponentArgs, opts=None)` named like its type token
  (`mlflow-platform:aws:<Component>`), its children named `f"{name}..."` with `parent=self`.
  A module may keep the small pure helpers of its own component (`rollout_timeout`, `db_identifier`).
  `platform.AwsPlatform` wires them.
- `components/aws/lib/*.py`: functions and plain data, no component: policy documents, the ECS
  container definition, IAM roles, KMS keys, the private-bucket baseline, Secrets Manager secrets
  and their references, the explicit providers. A function that creates resources does so under the
  parent it is given.

Every resource gets the explicit providers of `lib/providers.py` (the stacks disable default
providers): the platform passes them once, `ResourceOptions(providers=...)`, and children inherit them.
"""
