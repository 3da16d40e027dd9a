# Farmhand: `make demo` brings up and converges the local farm; `make test` runs every test.
# Both start from a fresh Debian 12 machine (as root) and install what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
PYTHON ?= python3
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

# Debian packages the project needs on the controller (the local farm's hosts get theirs by Ansible);
# nginx is the local farm's S3 TLS front (its own process per farm, not the system's service).
APT_PACKAGES := podman crun netavark aardvark-dns catatonit iptables debootstrap openssh-client git rsync \
	iproute2 util-linux tar curl ca-certificates wrk nginx
# The longest scenarios start first (measured in CI: 9 to 11 minutes each), so that the two lanes
# end together instead of one running a long scenario alone at the end.
MOLECULE_LONGEST := pgbackrest rails_unicorn sidekiq_worker app_release haproxy_lb postgres_replica
MOLECULE_ALL := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
MOLECULE_SCENARIOS := $(filter $(MOLECULE_LONGEST),$(MOLECULE_ALL)) $(filter-out $(MOLECULE_LONGEST),$(MOLECULE_ALL))
DEMO_FARM ?= demo
MOLECULE_JOBS ?= 2

.PHONY: help deps apt venv image image-molecule demo docs lint test test-quick test-python test-molecule test-farm test-farm-ci \
	test-farm-jobs test-farm-backups bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: apt venv ## Install everything (Debian packages, the Python venv)
	@# farmhand's bytecode, kept current: every `farm` run imports its modules, and where
	@# PYTHONDONTWRITEBYTECODE is set (this machine sets it) Python never caches them itself, so
	@# each run compiled about 8,000 lines again: 0.13 s of the 1.2 s of CPU a `farm ps` takes, in
	@# a suite that runs `farm` about 670 times. Up to date, this is a stat of each file.
	@$(VENV)/bin/python -m compileall -q src

apt: ## Install the Debian packages that are missing
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "-----> Installing Debian packages: $$missing"; \
		apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed ## Create .venv with the pinned Python packages

$(VENV)/.installed: pyproject.toml
	@echo "-----> Installing the Python packages into .venv"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	@$(VENV)/bin/pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	@$(VENV)/bin/farm --version >/dev/null
	@touch $@

image: deps ## Build the local Debian image (once; cached)
	farm local image

# Two streams of `make test` need it (molecule, farm-jobs): the first builds it, the other waits.
image-molecule: image ## Build the molecule scenarios' image: the local image with the roles' packages (once; cached)
	@mkdir -p .farm
	flock .farm/image-molecule.lock ansible-playbook -i localhost, molecule/_shared/image.yml

demo: deps ## Bring up the local demo farm, converge it and deploy the sample app
	farm local up -f $(DEMO_FARM)
	farm converge -f $(DEMO_FARM)
	farm deploy -f $(DEMO_FARM)
	@echo
	farm ps -f $(DEMO_FARM)
	@echo
	farm info -f $(DEMO_FARM)
	@echo
	@echo "The last lines the farm's hosts sent to its Papertrail stand-in (TLS syslog on the lb-logs host):"
	@podman exec farmhand-$(DEMO_FARM)-lb-logs-1 tail -n 5 /var/log/remote/papertrail.log
	@echo
	@echo "The local farm '$(DEMO_FARM)' is up, converged and runs the sample app (Web URL above)."
	@echo "  Hosts:      farm ps -f $(DEMO_FARM)"
	@echo "  Converge:   farm converge -f $(DEMO_FARM)"
	@echo "  Deploy:     farm deploy -f $(DEMO_FARM) [--ref REF]; farm releases -f $(DEMO_FARM); farm rollback -f $(DEMO_FARM)"
	@echo "  Config:     farm config:set -f $(DEMO_FARM) KEY=VALUE; farm config -f $(DEMO_FARM) --reveal; farm config:unset -f $(DEMO_FARM) KEY"
	@echo "  Database:   farm pg:info -f $(DEMO_FARM); farm pg:promote -f $(DEMO_FARM) --reseed; echo 'select 1' | farm psql -f $(DEMO_FARM)"
	@echo "  Web tier:   farm restart -f $(DEMO_FARM); farm maintenance:on|off -f $(DEMO_FARM)"
	@echo "  Jobs:       farm cron -f $(DEMO_FARM); farm cron:run -f $(DEMO_FARM) count-books; farm cron:history -f $(DEMO_FARM)"
	@echo "  Logs:       farm logs -f $(DEMO_FARM) --tail; podman exec farmhand-$(DEMO_FARM)-lb-logs-1 tail /var/log/remote/papertrail.log"
	@echo "  One-off:    farm run -f $(DEMO_FARM) -- bin/rails runner 'p Book.count'; farm console -f $(DEMO_FARM); farm ssh -f $(DEMO_FARM) -r web"
	@echo "  Workers:    farm ps:scale -f $(DEMO_FARM) worker=2; farm ps:autoscale -f $(DEMO_FARM) worker --min 1 --max 3 --target 5"
	@echo "  Drift:      farm converge -f $(DEMO_FARM) --check (exit 0: none, 3: drift)"
	@echo "  Ansible:    eval \"\$$(farm local env -f $(DEMO_FARM))\"; ansible-inventory --graph"
	@echo "  State:      $(CURDIR)/.farm (keys, moto, caches)"
	@echo "  Tear down:  farm local down -f $(DEMO_FARM)"

docs: deps ## Render the roles' README variable tables from their meta/argument_specs.yml (aar-doc)
	python tests/role_interfaces.py --write

lint: deps ## ruff, yamllint, ansible-lint (production profile), actionlint, the roles' interfaces
	ruff check src tests bench molecule roles plugins
	ruff format --check src tests bench molecule roles plugins
	yamllint --strict .
	ansible-lint --profile production
	actionlint
	python tests/role_interfaces.py

# Once the image is built, five streams run side by side (tests/streams.py), each in a CPU cgroup
# of its own with the containers it starts; the linters open the `python` stream (one core for two
# minutes, while the farms' first converges take the other). The suite is CPU-bound on two cores,
# so the weights (cgroup cpu.shares) decide who waits: the unit tests, short and full of hang
# guards sized for a machine that answers, go first; the two farm streams, the longest, next;
# molecule and the backup drill take what those leave while they wait on SSH, booting containers
# and held jobs. Every line is prefixed with its stream's name; the run ends with each stream's
# wall time, CPU and slowest tests.
# (`nice` cannot do this here: see tests/streams.py.)
RESULTS := .farm/test-results
STREAMS := \
	'python:16384:$(MAKE) --no-print-directory lint test-python' \
	'farm-ci:4096:$(MAKE) --no-print-directory test-farm-ci' \
	'farm-jobs:4096:$(MAKE) --no-print-directory test-farm-jobs' \
	'molecule:2048:$(MAKE) --no-print-directory test-molecule' \
	'farm-bk:2048:$(MAKE) --no-print-directory test-farm-backups'
test: deps image ## Run every test
	python tests/streams.py --results $(RESULTS) --logs .farm/molecule $(STREAMS)

# Day-to-day: the linters, the unit tests, and one molecule scenario or one whole-farm module.
#   make test-quick SCENARIO=redis
#   make test-quick MODULE=tests/test_local_farm_drift.py [FARMHAND_TEST_FARM=mine FARMHAND_TEST_REUSE=1]
test-quick: deps lint ## Lint, unit tests, and SCENARIO=<role> (molecule) or MODULE=<farm test module>
	$(MAKE) --no-print-directory test-python
	$(if $(SCENARIO),$(MAKE) --no-print-directory image-molecule && molecule test -s $(SCENARIO))
	$(if $(MODULE),$(MAKE) --no-print-directory image && pytest -m farm -rfEP --durations=20 $(MODULE))

test-python: deps ## CLI, inventory and unit tests against moto (four at a time: they mostly wait)
	pytest -n 4 -m "not farm" --junitxml=$(RESULTS)/python.xml tests

# Scenarios run two at a time (their containers and networks have their own names); each one's
# output goes to .farm/molecule/<scenario>.log and is printed in full if it fails.
test-molecule: image-molecule ## Every molecule scenario
	@mkdir -p .farm/molecule
	@printf '%s\n' $(MOLECULE_SCENARIOS) | xargs -P $(MOLECULE_JOBS) -I{} sh -c '\
		start=$$(date +%s); \
		if molecule test -s {} > .farm/molecule/{}.log 2>&1; then \
			echo "-----> molecule {}: passed in $$(( $$(date +%s) - start ))s ($$(grep -aEo "[0-9]+ passed" .farm/molecule/{}.log | tail -1))"; \
		else \
			echo "-----> molecule {}: FAILED, its log follows"; cat .farm/molecule/{}.log; exit 1; \
		fi'

# The whole-farm modules run on two farms side by side: `jobs` takes the two that hold jobs on
# purpose (workers, scaling), `ci` the rest (and the teardown test).
FARM_JOBS_MODULES := tests/test_local_farm_scaling.py tests/test_local_farm_workers.py

test-farm: image ## The whole-farm tests: the farms `ci`, `jobs` and the backup drill's `bk`, side by side
	$(MAKE) --no-print-directory -j3 test-farm-ci test-farm-jobs test-farm-backups

test-farm-ci: image ## The whole-farm tests on the farm `ci` (tests/test_local_farm*.py but the jobs farm's)
	pytest -m farm -rfEP --durations=40 --junitxml=$(RESULTS)/farm-ci.xml tests \
		--ignore=tests/test_backups_farm.py $(addprefix --ignore=,$(FARM_JOBS_MODULES))

test-farm-jobs: image-molecule ## The whole-farm tests of workers and scaling, on the farm `jobs`
	FARMHAND_TEST_FARM=jobs pytest -m farm -rfEP --durations=20 --junitxml=$(RESULTS)/farm-jobs.xml \
		$(FARM_JOBS_MODULES)

test-farm-backups: image-molecule ## The backup drill on the farm `bk`
	pytest -m farm -rfEP --durations=20 --junitxml=$(RESULTS)/farm-bk.xml tests/test_backups_farm.py

bench: deps ## Benchmarks (figures and ratios printed side by side)
	python bench/inventory.py
	python bench/converge.py
	python bench/deploy.py
	python bench/module_cache.py
	python bench/load_cost.py

clean: ## Tear down every local farm of this checkout
	@for d in .farm/local/*/; do [ -d "$$d" ] && farm local down -f $$(basename $$d) || true; done
