# Set-up commands for a fresh machine (Python 3.11). See README.md.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install node-deps demo test lint eval eval-domains eval-sets sweep-legal sweep-code \
	sweep-docs sweeps bench bench-ingest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	# torch first, pinned: the CPU wheel (an unpinned torch pulls the CUDA build).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'

# The independent MCP client the tests drive (@modelcontextprotocol/inspector-cli, Node 20).
node-deps: .ci/node/node_modules/.package-lock.json

.ci/node/node_modules/.package-lock.json: .ci/node/package.json .ci/node/package-lock.json
	npm ci --prefix .ci/node --no-audit --no-fund --loglevel=error

# Ingests the bundled samples (retrieval_samples/{docs,legal,code}/corpus, package data) into an
# embedded store and runs one search per domain over MCP.
demo: install
	$(BIN)/retrieval-mcp demo --store $(or $(STORE),.demo-store)

lint: install
	$(BIN)/ruff check server retrieval_eval tests scripts
	$(BIN)/ruff format --check server retrieval_eval tests scripts
	$(BIN)/mypy server retrieval_eval

test: lint node-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

eval: install
	$(BIN)/retrieval-mcp eval ../shared/datasets/scifact \
		--queries ../shared/datasets/scifact/queries.jsonl \
		--qrels ../shared/datasets/scifact/qrels-train.tsv \
		--store .eval-store/scifact --json eval-results/scifact.json

datasets/eval/legal/corpus.jsonl:
	# Built from /usr/share/common-licenses; not committed (see datasets/eval/README.md).
	$(PYTHON) scripts/build_eval_sets.py --sets legal

eval-domains: install datasets/eval/legal/corpus.jsonl
	$(BIN)/retrieval-mcp eval datasets/eval/code --domain code \
		--store .eval-store/code --json eval-results/code.json
	$(BIN)/retrieval-mcp eval datasets/eval/legal --domain legal \
		--store .eval-store/legal --json eval-results/legal.json

# Corpora built locally (not committed): licences from /usr/share/common-licenses, the rest from
# pinned Debian packages (apt-get download; see datasets/eval/README.md).
LOCAL_CORPORA = $(foreach set,legal legal-policy code-go docs-faq docs-pyindex,\
	datasets/eval/$(set)/corpus.jsonl)
datasets/eval/%/corpus.jsonl:
	$(PYTHON) scripts/build_eval_sets.py --sets $*
eval-sets: $(LOCAL_CORPORA)

# One sweep per domain: indexes each tuning set once (.eval-store/<domain>/, reused), scores the
# fusion / depth / BM25 grid on every set's tune and held-out parts, ranks by the worst tune set.
SWEEP = $(BIN)/python -m retrieval_eval.sweep
sweep-legal: install eval-sets
	$(SWEEP) --domain legal --json eval-results/sweep-legal.json --markdown eval-results/sweep-legal.md
sweep-code: install eval-sets
	$(SWEEP) --domain code --json eval-results/sweep-code.json --markdown eval-results/sweep-code.md
sweep-docs: install eval-sets
	$(SWEEP) --domain docs --json eval-results/sweep-docs.json --markdown eval-results/sweep-docs.md
sweeps: sweep-legal sweep-code sweep-docs

bench: install datasets/eval/legal/corpus.jsonl
	$(BIN)/retrieval-mcp bench --chunks 10000,100000

bench-ingest: install
	$(BIN)/retrieval-mcp bench --ingest

clean:
	rm -rf $(VENV) .demo-store .eval-store *.egg-info
