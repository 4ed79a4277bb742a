# The two commands: `make run` (set up what is missing, start the whole stack)
# and `make test` (set up what is missing, run the whole suite). `make help` lists the rest.

SHELL := /bin/bash
VENV ?= .venv
RASA_VENV ?= .venv-rasa
export VENV RASA_VENV
PY := $(VENV)/bin/python
RASA := $(abspath $(RASA_VENV))/bin/rasa
TINY_MODEL ?= models/tiny-qwen2
RASA_PROJECT ?= rasa_project
NLU_FOLDS ?= 3
PYTEST_ARGS ?=
LOAD_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup run test test-fast faq-responses rasa-model train validate test-stories nlu-report shell tiny-model clean clean-venvs helm-lint helm-template images compose-up compose-down test-deploy finetune-demo bench-llm bench-llm-gpu audit loadtest

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## create .venv (Python 3.11+) and .venv-rasa (Python 3.10, Rasa 3.6) if missing or stale; system packages, webchat widget
	@scripts/system_deps.sh
	@scripts/setup.sh
	@scripts/web_deps.sh

run: setup rasa-model ## start LLM service :8000, actions :5055, Rasa :5005, webchat :8080 (Ctrl-C stops)
	@$(PY) -m stack run

test: setup rasa-model ## run the whole suite (unit, Rasa data/story tests, end-to-end)
	@scripts/system_deps.sh test
	@scripts/test.sh $(PYTEST_ARGS)

test-fast: setup ## the unit tests only (no Rasa servers, no training)
	@$(PY) -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

audit: setup ## known vulnerabilities in both venvs vs audit/known-vulnerabilities.yml (needs pypi.org's JSON API)
	@$(PY) scripts/audit.py --venv app=$(VENV) --venv rasa=$(RASA_VENV)

faq-responses: setup ## regenerate rasa_project/domain/faq.yml from knowledge/store.yml
	@$(PY) -m ridgeline.knowledge write

.PHONY: catalog-nlu
catalog-nlu: setup ## regenerate rasa_project/data/nlu/catalog.yml (lookup tables, synonyms, regexes) from knowledge/catalog.csv
	@$(PY) -m ridgeline.catalog_nlu write

rasa-model: setup ## train the Rasa model if its data or config changed
	@$(PY) -m ridgeline.knowledge write
	@$(PY) -m ridgeline.catalog_nlu write
	@scripts/rasa_model.sh

train: rasa-model ## (designers) same as rasa-model

validate: setup ## (designers) check YAML, domain, NLU, stories and rules for mistakes and conflicts (file:line)
	@$(PY) -m ridgeline.knowledge check
	@$(PY) -m ridgeline.catalog_nlu check
	@RASA=$(RASA) $(PY) -m scripts.designer validate $(RASA_PROJECT)

test-stories: rasa-model ## (designers) run rasa_project/tests/test_stories.yml against the trained model
	@RASA=$(RASA) $(PY) -m scripts.designer test-stories $(RASA_PROJECT) --model $(RASA_PROJECT)/models/assistant.tar.gz

nlu-report: setup ## (designers) cross-validated F1 per intent and a confusion matrix image (NLU_FOLDS=3, minutes)
	@RASA=$(RASA) $(PY) -m scripts.designer nlu-report $(RASA_PROJECT) --folds $(NLU_FOLDS)

.PHONY: nlu-holdout faq-threshold
nlu-holdout: rasa-model ## (designers) which response/action each held-out utterance reaches, scored against the targets
	@RASA=$(RASA) $(PY) -m scripts.designer holdout $(RASA_PROJECT) --model $(RASA_PROJECT)/models/assistant.tar.gz

faq-threshold: setup ## (designers) cross-validate the FAQ confidence gate's threshold on data/nlu (NLU_FOLDS=3, minutes)
	@RASA=$(RASA) $(PY) -m scripts.designer faq-threshold $(RASA_PROJECT) --folds $(NLU_FOLDS)

shell: rasa-model ## (designers) talk to the assistant in the terminal (start `make run` first for custom actions)
	@cd rasa_project && $(abspath $(RASA_VENV))/bin/python -m ridgeline_rasa.launch shell --model models/assistant.tar.gz

.PHONY: review
ARGS ?=
review: setup ## (designers) conversations to review, exports, retention: make review ARGS="list --since 7d" (docs/review.md)
	@$(PY) -m review $(ARGS)

tiny-model: setup ## build a tiny random Qwen2 model in models/tiny-qwen2 (LLM_MODEL=models/tiny-qwen2 make run)
	@$(PY) -m tools.testing.tiny_model --output $(TINY_MODEL)

clean: ## remove trained models, logs and test output (keeps the virtualenvs)
	rm -rf rasa_project/models rasa_project/results var models .pytest_cache

ENV ?= dev
helm-lint: setup ## (operators) lint the Helm chart with each environment's values
	@for e in dev staging prod; do scripts/helm.sh lint --strict helm/ridgeline -f helm/ridgeline/values-$$e.yaml --namespace ridgeline-$$e || exit 1; done

helm-template: setup ## (operators) render the chart for ENV=dev|staging|prod
	@scripts/helm.sh template ridgeline helm/ridgeline -f helm/ridgeline/values-$(ENV).yaml --namespace ridgeline-$(ENV)

images: ## (operators) build the container images (needs a Docker engine)
	docker build -f docker/rasa.Dockerfile -t ridgeline/rasa:dev .
	docker build -f docker/actions.Dockerfile -t ridgeline/actions:dev .
	docker build -f docker/llm.Dockerfile -t ridgeline/llm:dev .
	docker build -f docker/llm.Dockerfile --target cpu -t ridgeline/llm:dev-cpu .

compose-up: ## (operators) the whole stack with PostgreSQL, Redis, Prometheus, Grafana (needs Docker; copy .env.example to .env)
	docker compose up -d --build

compose-down: ## (operators) stop the compose stack
	docker compose down

test-deploy: setup ## (operators) the chart, compose and image checks only
	@$(PY) -m pytest tests/deploy $(PYTEST_ARGS)

finetune-demo: setup tiny-model ## (operators) prepare -> sft -> merge -> dpo -> evaluate -> merge on training/samples with the tiny model (CPU, ~3 min)
	@rm -rf var/finetune-demo models/finetune-demo models/finetune-demo-dpo
	@$(PY) -m training prepare --input training/samples --output var/finetune-demo/data
	@$(PY) -m training sft --config training/samples/tiny-sft.yaml --model $(TINY_MODEL)
	@$(PY) -m training evaluate --model $(TINY_MODEL) --adapter var/finetune-demo/adapter --data var/finetune-demo/data
	@$(PY) -m training merge --model $(TINY_MODEL) --adapter var/finetune-demo/adapter --output models/finetune-demo
	@$(PY) -m training dpo --config training/samples/tiny-dpo.yaml
	@$(PY) -m training evaluate --model models/finetune-demo --adapter var/finetune-demo/dpo --data var/finetune-demo/data
	@$(PY) -m training merge --model models/finetune-demo --adapter var/finetune-demo/dpo --output models/finetune-demo-dpo
	@echo "Serve it: LLM_MODEL=models/finetune-demo-dpo make run (or models/finetune-demo: sft only)"

BENCH_ARGS ?=
bench-llm: setup ## (operators) benchmark the LLM service against plain generate (random Qwen2.5-1.5B shape; BENCH_ARGS=...)
	@$(PY) -m tools.bench.llm $(BENCH_ARGS)

bench-llm-gpu: setup ## (operators) on a GPU host: bf16/int8/nf4 on the 1.5B shape in one go
	@tools/bench/llm/gpu.sh

loadtest: setup rasa-model ## 50 concurrent conversations x 10 turns against the tiny-model stack: latency, errors (LOAD_ARGS=...)
	@$(PY) -m tools.load $(LOAD_ARGS)
