# The two entry points a newcomer needs (see README.md):
#   make demo   run the main job: the local stack in development mode
#   make test   run every test (what CI runs)
# Both install whatever is missing first.

.PHONY: demo test deps model

demo:
	@scripts/demo.sh

test:
	@scripts/test.sh

# Install-only targets, for people who want to prepare a machine ahead of time.
deps:
	@scripts/install-deps.sh

model:
	@scripts/fetch-model.sh
