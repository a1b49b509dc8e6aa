# The two commands of the README:
#   make run    install dependencies, build, run an example
#   make test   install dependencies, build, run every test
# Other targets: build, check-conformance, bench, serve-demo, asan, fuzz, clean.
BUILD   ?= build
JOBS    ?= 2
TDL     := $(BUILD)/tdl
EXAMPLE ?= examples/digits_mlp.tdl

.PHONY: all deps configure build run test check-conformance asan fuzz bench serve-demo clean

all: build

deps:
	bash scripts/install-deps.sh
	bash scripts/fetch-example-data.sh

configure:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps configure
	ninja -C $(BUILD) -j$(JOBS)

run: build
	$(TDL) run $(EXAMPLE)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

# The shared conformance suite, with the tests not expected to pass yet as pending.
check-conformance: build
	python3 ../shared/conformance/run.py --tdl $(TDL) --modes eager,graph,build --pending tests/conformance-pending.txt

# The benchmark suite: every workload in TDL beside NumPy, PyTorch, TorchScript and C,
# the issues' targets met or not; writes bench/RESULTS.md (under 10 minutes). PyTorch, its
# peer, is installed here (scripts/install-bench-deps.sh), not with the test dependencies.
bench: build
	bash scripts/install-bench-deps.sh
	python3 bench/run --tdl $(TDL)

# Train → export → serve (docs/serving.md): trains the digits MLP, exports its predict fn,
# serves it on a free port and asks it for three predictions.
serve-demo: build
	$(TDL) export examples/serving/digits_model.tdl --fn predict -o $(BUILD)/digits.tdlm
	$(TDL) inspect $(BUILD)/digits.tdlm
	bash scripts/serve-demo.sh $(TDL) $(BUILD)/digits.tdlm

# Everything under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	cmake --preset asan
	ninja -C build-asan -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j$(JOBS)

fuzz: deps
	bash scripts/fuzz.sh $(or $(SECONDS),600)

clean:
	rm -rf $(BUILD) build-asan build-fuzz
