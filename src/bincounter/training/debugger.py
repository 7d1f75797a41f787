"""The smdebug hook, configured like SageMaker's DebugHookConfig.

SageMaker writes ``input/config/debughookconfig.json`` when a job has a
DebugHookConfig; locally we write the same document (the seed's collections
and intervals) to ``output/tensors`` so both paths create the hook the same
way. orchestrate sends ``HOOK_PARAMETERS`` / ``COLLECTIONS`` to the API.
Importing this module does not import smdebug or torch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

HOOK_PARAMETERS = {"train.save_interval": "5", "eval.save_interval": "1"}
LOSS_TENSOR = ".*Loss_output_0"  # CrossEntropyLoss or OrdinalNLLLoss
COLLECTIONS = {
    "weights": dict(HOOK_PARAMETERS),
    "gradients": dict(HOOK_PARAMETERS),
    "biases": dict(HOOK_PARAMETERS),
    "losses": {"include_regex": LOSS_TENSOR, "train.save_interval": "1", "eval.save_interval": "1"},
}


def hook_config(local_path: str | Path) -> dict:
    """The debughookconfig.json document SageMaker would write for our settings."""
    return {
        "LocalPath": str(local_path),
        "HookParameters": dict(HOOK_PARAMETERS),
        "CollectionConfigurations": [{"CollectionName": name, "CollectionParameters": params}
                                     for name, params in COLLECTIONS.items()],
    }


def create_hook(config_file: Path | None, tensor_dir: Path):
    """An smdebug Hook from SageMaker's config, or from ours written to ``tensor_dir``."""
    from smdebug.pytorch import Hook

    if config_file is None:
        tensor_dir.parent.mkdir(parents=True, exist_ok=True)
        config_file = tensor_dir.parent / "debughookconfig.json"
        config_file.write_text(json.dumps(hook_config(tensor_dir), indent=2), encoding="utf-8")
    hook = Hook.create_from_json_file(str(config_file))
    log.info("smdebug hook writes tensors to %s (config %s)", hook.out_dir, config_file)
    return hook
