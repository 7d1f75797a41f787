# The front door. Every target is a line or two calling a real tool.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-fast test-all demo lock venv clean

venv: $(STAMP)
$(STAMP): requirements/dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --no-deps -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e . && touch $@

# Label Studio, the review loop's labelling server (docs/reviews.md): its own venv and lock
LS_STAMP := .venv-labelstudio/.installed
.PHONY: labelstudio
labelstudio: $(LS_STAMP)
$(LS_STAMP): requirements/labelstudio.lock $(STAMP)
	$(PYTHON) -m venv .venv-labelstudio && .venv-labelstudio/bin/pip install --quiet --no-deps -r $<
	$(BIN)/python -m devtools.label_studio --make-template && touch $@

# Test tiers (docs/testing.md; tests/tiers.py fails collection when a test is in the wrong one).
# the inner loop: no training run, no server process, no moto, no container
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not container" $(PYTEST_ARGS)

# everything but the container tier: the training runs, real servers (Label Studio too), moto;
# on a worker per core (pytest-xdist; tests/made_once.py trains the session's models once for
# all workers), one torch thread each, so that two training runs split the cores
TEST_WORKERS ?= auto
test: $(STAMP) $(LS_STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pytest -n $(TEST_WORKERS) -m "not container" $(PYTEST_ARGS)

# what .ci/run runs: `make test`, then the container tier (needs Docker) in one process, each
# printing its 25 slowest tests; JUNIT=DIR keeps their JUnit reports (tests.xml, containers.xml)
test-all: $(STAMP) $(LS_STAMP)
	$(MAKE) test PYTEST_ARGS="--durations=25 $(if $(JUNIT),--junitxml=$(JUNIT)/tests.xml) $(PYTEST_ARGS)"
	$(BIN)/pytest -m container --durations=25 $(if $(JUNIT),--junitxml=$(JUNIT)/containers.xml) $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m devtools.demo

# The real ABID sample the tests of real photos and the benchmarks read: when ../shared has none,
# its 4,995 bins from the public bucket (anonymous, resumable; ~220 MB fetched, 62 MB kept) into
# ABID_SAMPLE, which every target here passes on to the tests and benchmarks
export ABID_SAMPLE ?= $(abspath ../shared/data/abid-sample)
.PHONY: sample
sample: $(STAMP)
	$(BIN)/python -m devtools.sample --dest $(ABID_SAMPLE)

# seed recipe vs ours on ../shared/data/abid-sample, both budgets x 2 seeds (about an hour on 2 quiet cores)
.PHONY: bench-train
bench-train: $(STAMP)
	$(BIN)/python -m benchmarks.bench_train $(BENCH_ARGS)

# a seed-style torch server vs serve on fp32 and on int8, same trained ResNet50, 4 clients x 30 s
# each; trains the model first (3-4 h on 2 cores, kept in /tmp/bench_serve) unless --model-dir
.PHONY: bench-serve bench-quantize
bench-serve: $(STAMP)
	$(BIN)/python -m benchmarks.bench_serve $(BENCH_ARGS)

# int8 calibration methods, sizes and data types on bench-serve's trained model
bench-quantize: $(STAMP)
	$(BIN)/python -m benchmarks.bench_quantize $(BENCH_ARGS)
# hostile traffic (10,000 requests of 44 kinds + slow partial requests), then 4 clients x 60 s
# of valid traffic, against serve on loopback: fails on any 5xx or lost connection (~8 min here)
.PHONY: soak-serve
soak-serve: $(STAMP)
	$(BIN)/python -m benchmarks.soak_serve $(BENCH_ARGS)

# the drift alarm on real photos through a bench-train model: false alarms, detections, label-free
# estimates (docs/monitoring.md); BENCH_ARGS="RUN_FOLDER [--windows 200 --sizes 30 60 120]"
.PHONY: bench-monitor
bench-monitor: $(STAMP)
	$(BIN)/python -m benchmarks.bench_monitor $(BENCH_ARGS)

# which bins teach: picking strategies against random, thresholds from recounts, on
# ../shared/data/abid-sample (docs/reviews.md "Which bins teach"). The default is a subset (~20 min on
# 2 quiet cores); the full grid and the cleaning arm: BENCH_ARGS="--budgets 100 300 600 --strategies
# random recount-head per-count margin typical mixed --arms grid recounts calibration cleaning" (hours)
.PHONY: bench-review
bench-review: $(STAMP)
	$(BIN)/python -m benchmarks.bench_review $(BENCH_ARGS)

# the fault matrix: serving, the Lambda, the audit, the review loop, the monitor and training under
# real faults, one table (docs/testing.md "Faults"; ~6 min, needs the Label Studio venv)
.PHONY: bench-faults
bench-faults: $(STAMP) $(LS_STAMP)
	$(BIN)/python -m benchmarks.bench_faults $(BENCH_ARGS)

# The audit on synthetic bins, on this machine (docs/cloud.md "Audit"): a small model trained through
# the toolkit, then `orchestrate audit --local` (the SageMaker SDK's local Batch Transform on the
# serving image bincounter-serving:$(IMAGE_TAG): make images first). Report in build/audit/.
.PHONY: audit
audit: $(STAMP)
	$(BIN)/python -m devtools.demo --no-serve --n 200 --out $(CURDIR)/build/audit-demo
	$(ORCHESTRATE) --set images.tag=$(IMAGE_TAG) audit --local --images build/audit-demo/data/images --model-data build/audit-demo/opt_ml/model --out build/audit

# The whole bucket's data path (docs/training.md "Training on the whole bucket"): shards made and
# read against loose files on ../shared/data/abid-sample, and the 535k projection (~1 min)
.PHONY: bench-data
bench-data: $(STAMP)
	$(BIN)/python -m benchmarks.bench_data $(BENCH_ARGS)

# Image builds from the whole wheelhouse (the old root context) against each image's own context,
# side by side: bytes sent, seconds cold (--no-cache) and warm (docs/testing.md; ~15 min, needs Docker)
.PHONY: bench-builds
bench-builds: $(STAMP) wheels
	$(BIN)/python -m benchmarks.bench_builds $(BENCH_ARGS)

# Batch Transform throughput of one serving container on ../shared/data/abid-sample, projected to
# the whole bucket (docs/cloud.md "Audit"; ~5 min)
.PHONY: bench-audit
bench-audit: $(STAMP)
	$(BIN)/python -m benchmarks.bench_audit --image bincounter-serving:$(IMAGE_TAG) $(BENCH_ARGS)

lock:
	requirements/lock.sh

clean:
	rm -rf $(VENV) demo build

# The Lambda front door (lambda/README.md): stdlib + the runtime's boto3, so the
# zip is our two modules at its top level; handler setting handler.lambda_handler.
.PHONY: lambda-zip
lambda-zip: build/lambda.zip
build/lambda.zip: lambda/handler.py lambda/lambda_events.py
	mkdir -p build && rm -f $@ && $(PYTHON) -m zipfile -c $@ $^

# Containers (docs/containers.md): one wheelhouse from the locks, and a build context per image
# under build/context/ holding hard links to only what that image installs (devtools/build_context.py);
# builds never reach a package index (--network none, classic builder).
# `pip wheel` (not download) so that sdist-only pins (sagemaker-training, with a
# C extension, inotify_simple) arrive as wheels and the images need no compiler.
.PHONY: wheels images up down push
WHEELS         := wheels
IMAGE_TAG      ?= latest
TRAINING_IMAGE ?= bincounter-training
SERVING_IMAGE  ?= bincounter-serving
# The training image carries the ImageNet weights pretrained=true (the default) needs,
# fetched by the build (not pip) over the network; offline builds and CI opt out with
# PRETRAINED_WEIGHTS=0, and the image's label says so (orchestrate train checks it).
PRETRAINED_WEIGHTS ?= 1
BUILD          := DOCKER_BUILDKIT=0 docker build --network $(if $(filter 1,$(PRETRAINED_WEIGHTS)),default,none) --build-arg PRETRAINED_WEIGHTS=$(PRETRAINED_WEIGHTS)
CONTEXTS       := build/context
AWS_REGION     ?= $(or $(AWS_DEFAULT_REGION),us-east-1)
ECR             = $(or $(ECR_ACCOUNT),$(shell aws sts get-caller-identity --query Account --output text)).dkr.ecr.$(AWS_REGION).amazonaws.com

# The locks' wheels once (a stamp), our own wheel and the contexts on every call: images hold the code of this tree.
WHEELHOUSE := $(WHEELS)/.complete
$(WHEELHOUSE): requirements/training.lock requirements/serving.lock
	$(PYTHON) -m pip wheel --quiet --no-deps -w $(WHEELS) -r requirements/training.lock -r requirements/serving.lock && touch $@
# Label Studio's wheels (compose's review profile builds its image from them), apart from ours
LS_WHEELHOUSE := $(WHEELS)/labelstudio/.complete
$(LS_WHEELHOUSE): requirements/labelstudio.lock
	$(PYTHON) -m pip wheel --quiet --no-deps -w $(WHEELS)/labelstudio -r requirements/labelstudio.lock && touch $@
# .env: compose reads it; docker-compose.yml refuses to start without this line (no build contexts)
wheels: $(WHEELHOUSE) $(LS_WHEELHOUSE)
	rm -rf $(WHEELS)/project build/lib && $(PYTHON) -m pip wheel --quiet --no-deps -w $(WHEELS)/project .
	$(PYTHON) -m devtools.build_context && (grep -qs '^BINCOUNTER_CONTEXTS=' .env || echo 'BINCOUNTER_CONTEXTS=$(CONTEXTS)' >> .env)

images: wheels
	$(BUILD) -f $(CONTEXTS)/training/training-image/Dockerfile -t $(TRAINING_IMAGE):$(IMAGE_TAG) $(CONTEXTS)/training
	$(BUILD) -f $(CONTEXTS)/serving/serving-image/Dockerfile -t $(SERVING_IMAGE):$(IMAGE_TAG) $(CONTEXTS)/serving && docker images 'bincounter-*'

up: wheels
	docker compose up --build --exit-code-from client

down:
	docker compose down --volumes --remove-orphans

push:
	aws ecr get-login-password --region $(AWS_REGION) | docker login --username AWS --password-stdin $(ECR)
	for img in $(TRAINING_IMAGE) $(SERVING_IMAGE); do aws ecr describe-repositories --region $(AWS_REGION) --repository-names $$img >/dev/null 2>&1 || aws ecr create-repository --region $(AWS_REGION) --repository-name $$img >/dev/null; docker tag $$img:$(IMAGE_TAG) $(ECR)/$$img:$(IMAGE_TAG) && docker push $(ECR)/$$img:$(IMAGE_TAG) || exit 1; done

# The AWS control plane (docs/cloud.md): settings from orchestrate.toml, overridable
# by ORCHESTRATE_<SECTION>_<KEY> env and ARGS, e.g. make train ARGS="--set train.spot=false".
.PHONY: data train tune deploy lambda report teardown
ORCHESTRATE := $(BIN)/python -m orchestrate
data: $(STAMP)
	$(ORCHESTRATE) data $(ARGS)
train: $(STAMP)
	$(ORCHESTRATE) train $(ARGS)
tune: $(STAMP)
	$(ORCHESTRATE) tune $(ARGS)
deploy: $(STAMP)
	$(ORCHESTRATE) deploy $(ARGS)
lambda: $(STAMP) build/lambda.zip
	$(ORCHESTRATE) --set lambda.zip_file=build/lambda.zip lambda $(ARGS)
report: $(STAMP)
	$(ORCHESTRATE) report $(ARGS)
teardown: $(STAMP)
	$(ORCHESTRATE) teardown $(ARGS)
