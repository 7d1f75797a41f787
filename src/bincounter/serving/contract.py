"""The facts of the serving contract that other parts must agree with.

The Lambda front door (stdlib-only, so it keeps copies that a test checks
against these), the local SageMaker Runtime emulator and the clients all
size and type their requests by this module; ``codec`` parses by it.
"""

# SageMaker's limit for real-time request and response bodies (docs/platform.md §1).
MAX_BODY_BYTES = 6_291_456
# SageMaker's "MB" in payload limits: 6 MB = MAX_BODY_BYTES.
MB = 1024 * 1024
# Batch Transform: MaxPayloadInMB is at most 100, and MaxConcurrentTransforms x MaxPayloadInMB
# must not exceed 100 (docs/platform.md §8).
MAX_BATCH_PAYLOAD_MB = 100
# Request bodies that are one image file; PIL decodes whatever format the bytes hold.
RAW_IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
JSON = "application/json"
JSONLINES = "application/jsonlines"
REQUEST_TYPES = RAW_IMAGE_TYPES + (JSON, JSONLINES)
RESPONSE_TYPES = (JSON, JSONLINES)
# InvokeEndpoint's CustomAttributes reach the container in this header.
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
EXPECTED_QUANTITY = "expected_quantity"
# JSON request bodies: our documents nest 3 deep ({"instances": [{"image": …}]}); 32 leaves
# room for any extra fields a client sends along and stays far below Python's recursion limit.
MAX_JSON_DEPTH = 32
# Instances (or jsonlines lines) per request: bounds one request's tensors (128 x 3 x 224 x
# 224 float32 = 77 MB) and its time (about 6 s of ResNet50 on one core; SageMaker allows 60 s).
MAX_INSTANCES = 128
# An expected quantity counts the items in one bin: nine digits are plenty and keep reasons short.
MAX_QUANTITY = 999_999_999
