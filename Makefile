# The two commands a newcomer runs:  make demo  (set up + default training run)   make test  (set up + tests)
.PHONY: setup demo test
setup:
	bash scripts/setup.sh
demo: setup
	.venv/bin/rlvr train
test:
	bash scripts/test.sh
