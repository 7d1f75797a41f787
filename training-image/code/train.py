"""The entry point SageMaker runs (``SAGEMAKER_PROGRAM=train.py``): the training
contract, resolved from the toolkit's flags and environment, handed to the
package. Everything else lives in ``bincounter.training`` (docs/training.md).
"""

import sys

from bincounter.training import pipeline
from bincounter.training.environment import TrainingEnv

if __name__ == "__main__":
    sys.exit(pipeline.main(lambda: TrainingEnv.resolve(sys.argv[1:])))
