# The two entry points a newcomer needs (see README.md):
#   make demo   run the main job: the local stack in development mode
#               (make demo-keep, or make demo ARGS=--keep-running: then keep it up to try it)
#   make test   run every test (what CI runs)
# Both install whatever is missing first.

.PHONY: demo demo-keep test deps model

demo:
	@scripts/demo.sh $(ARGS)

demo-keep:
	@scripts/demo.sh --keep-running

test:
	@scripts/test.sh

# Install-only targets, for people who want to prepare a machine ahead of time.
deps:
	@scripts/install-deps.sh

model:
	@scripts/fetch-model.sh
