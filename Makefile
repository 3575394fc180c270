# The README's two commands: `make run` and `make test`. Each builds .venv when it is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Console for people: without TensorFlow's C++ start-up lines and the Google Cloud libraries'
# FutureWarnings about Python 3.10 (errors that matter still surface).
QUIET := TF_CPP_MIN_LOG_LEVEL=3 GRPC_VERBOSITY=ERROR PYTHONWARNINGS=ignore::FutureWarning

.PHONY: venv data photos-data run schema serve monitor span-from-requests predict browser fonts test faults bench bench-serving bench-scale bench-gpu lint lock clean kubeflow kubeflow-local image

venv: $(STAMP)

# A Python 3.10 virtualenv with the exact package versions of requirements.lock; the project
# root goes on its path (a .pth file) so that TFX, Beam workers and the CLI import our modules.
$(STAMP): requirements.lock
	@py=""; \
	for candidate in python3.10 $$(pyenv root 2>/dev/null)/versions/3.10.*/bin/python3.10; do \
	  if "$$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then \
	    py=$$candidate; break; fi; \
	done; \
	if [ -z "$$py" ]; then \
	  echo "error: Python 3.10 not found (tried python3.10 and pyenv). Install it, e.g. 'pyenv install 3.10.13' or your OS's python3.10 package, then re-run make." >&2; \
	  exit 1; fi; \
	echo "Creating $(VENV) with $$py ($$("$$py" --version))"; \
	rm -rf $(VENV) && "$$py" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	@echo "Installing the locked packages (about 3 minutes, 3.4 GB)..."
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip check
	echo "$(CURDIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/mnist_tfx_project.pth"
	touch $@

data: $(STAMP)
	$(QUIET) $(PY) -m pipeline.data_source

# A generated colour data set for the photos profile (components/data/colour_shapes.py).
PHOTOS_DATA ?= outputs/data/colour-shapes
photos-data: $(STAMP)
	$(PY) -m components.data.colour_shapes $(PHOTOS_DATA) --count $(or $(COUNT),3000) $(if $(SIZE),--size $(SIZE))

run: $(STAMP) fonts
	$(PY) -m pipeline.run

# make schema DATA=<source>: a schema inferred for the data, to review and check in (SCHEMA=).
schema: $(STAMP)
	$(QUIET) $(PY) -m pipeline.infer_schema

# The KFP v2 / Vertex AI pipeline spec, under outputs/kubeflow/ (settings: README, Kubeflow).
kubeflow: $(STAMP)
	$(QUIET) $(PY) -m kubeflow.runner

# That spec executed here, task by task, as KFP v2's launcher would (outputs/kubeflow-local/);
# ARGS=--fresh-processes starts each step in a new interpreter, as its container does.
kubeflow-local: $(STAMP)
	$(QUIET) $(PY) -m kubeflow.local_run $(ARGS)

# Builds and pushes the pipeline image (needs a Docker engine, which this machine lacks).
image: $(STAMP)
	image=$$($(QUIET) $(PY) -m kubeflow.settings image) && \
	  docker build -f kubeflow/Dockerfile -t "$$image" . && docker push "$$image"

# A setting as the pipeline sees it (OUTPUT_DIR, MODEL_NAME, ... from the environment).
setting = $$($(PY) -m pipeline.settings $(1))

# The local TF Serving-compatible server, serving what the Pusher wrote: gRPC on 127.0.0.1:8500,
# REST, metrics and a page to draw digits on http://127.0.0.1:8501/. MODEL_CONFIG=<file>: the
# models, version policies and labels of TF Serving's model config file (read every 5 s).
serve: $(STAMP)
	$(QUIET) $(PY) -m serving.server --model_name $(call setting,model_name) \
	  $(if $(MODEL_CONFIG),--model_config_file $(MODEL_CONFIG) --model_config_file_poll_wait_seconds 5,--model_base_path $(call setting,serving_model_dir)) \
	  --request_log_dir $(call setting,request_log_dir) --drift_file $(call setting,drift_file)

# The served version's logged requests against its training data (pipeline/monitor.py): each
# feature's drift, exit 3 past a threshold.
monitor: $(STAMP)
	@$(QUIET) $(PY) -m pipeline.monitor

# The pictures people corrected while `make serve` ran become DATA's next span.
span-from-requests: $(STAMP)
	@$(QUIET) $(PY) -m pipeline.span_from_requests

# make predict FILES="digit.png some/folder t10k-images-idx3-ubyte.gz" [TARGET=host:port] [REST=1]
predict: $(STAMP)
	@$(QUIET) $(PY) -m serving.client predict $(FILES) $(if $(TARGET),--target $(TARGET)) $(if $(REST),--rest) \
	  --model_name $(call setting,model_name)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The browser test's Chromium: Debian's package, installed when missing and make runs as root
# with apt-get (as on CI); elsewhere the browser test skips and says why.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Chromium for the browser test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	      || echo "note: Chromium did not install; the browser test will skip"; \
	  else echo "note: no Chromium (needs root and apt-get); the browser test will skip"; fi; }

# The fonts the Trainer prints training digits in and the benchmark measures printed digits
# with (trainer/fonts.py): Debian's DejaVu and Liberation, installed when missing and make runs
# as root with apt-get; elsewhere training goes on without printed digits and says so.
fonts: $(STAMP)
	@$(PY) -m trainer.fonts || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing the DejaVu and Liberation fonts..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      fonts-dejavu-core fonts-liberation >/dev/null \
	      || echo "note: the fonts did not install; training goes on without printed digits"; \
	  else echo "note: installing them needs root and apt-get: no printed digits"; fi; }

test: $(STAMP) lint browser fonts
	$(PY) -m pytest

# Runs killed, interrupted and started together on small real runs, and a flood of half-open
# connections against the model server; in order, on one worker, printing what each measured.
faults: $(STAMP)
	$(PY) -m pytest -m faults -n 0 -s tests/test_faults.py

# Every performance figure of the README, side by side in one run (about 17 minutes here).
bench: $(STAMP) fonts
	$(QUIET) $(PY) -m tests.bench.figures

# The serving figures alone (a few minutes), against the model `make run` pushed.
bench-serving: $(STAMP)
	$(QUIET) $(PY) -m tests.bench.serving

# How the pipeline's cost grows: 5,000 to 500,000 jittered digits, both Beam modes (about 40 min;
# ARGS="--sizes 5000 50000" for fewer).
bench-scale: $(STAMP)
	$(QUIET) $(PY) -m tests.bench.scale $(ARGS)

# Training examples/s and step time on the visible devices (GPUs if any; ARGS="--jit_compile").
bench-gpu: $(STAMP)
	$(QUIET) $(PY) -m tests.bench.devices $(ARGS)

# Resolves requirements.lock afresh from pyproject.toml's dependencies, in a virtualenv of its
# own (a few minutes); the next make reinstalls .venv from it.
LOCK_VENV := build/lock-venv
lock: $(STAMP)
	rm -rf $(LOCK_VENV) && $(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip==26.3
	$(PY) -c 'import tomli; print("\n".join(tomli.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
	  | xargs -d '\n' $(LOCK_VENV)/bin/python -m pip install --quiet
	$(LOCK_VENV)/bin/python -m pip check
	{ echo "# Exact versions of every package in .venv (Python 3.10). Regenerate with: make lock"; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable --exclude pip; } > requirements.lock
	rm -rf $(LOCK_VENV)

clean:
	rm -rf outputs
