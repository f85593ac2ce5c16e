# yolo-wgsl: `make demo` and `make test` do all set-up on a fresh machine.
NODE ?= node
TSX := $(NODE) --import tsx
CLI := $(TSX) src/cli/main.ts

.PHONY: deps test demo bench doctor typecheck build clean distclean browser api-docs check-pack test-swiftshader test-subgroup16 gpu-check

## deps: npm packages (from package-lock.json) and, on Debian, Mesa 25 lavapipe in .mesa/ (no system change);
## Debian's chromium for the browser test when missing and allowed (root or passwordless sudo; YOLO_WGSL_NO_CHROMIUM=1: never)
deps: node_modules/.deps-ok .mesa/.done .chromium/.done

node_modules/.deps-ok: package.json package-lock.json
	@command -v $(NODE) >/dev/null || { echo "Node.js 20+ is required (https://nodejs.org or apt-get install nodejs)"; exit 1; }
	npm ci --no-audit --no-fund || npm install --no-audit --no-fund
	@touch $@

.mesa/.done: scripts/setup-mesa.sh
	@mkdir -p .mesa
	bash scripts/setup-mesa.sh
	@touch $@

.chromium/.done: scripts/setup-chromium.sh
	@mkdir -p .chromium
	bash scripts/setup-chromium.sh
	@touch $@

## test: type-check, then every uvu test (kernels vs float64 references, finite differences, PyTorch goldens)
test: deps
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p .
	$(NODE) scripts/run-tests.mjs

## test-swiftshader: the kernel tests on SwiftShader (Vulkan on the CPU, subgroups of 4 where lavapipe has 8):
## no kernel may assume one subgroup size. scripts/setup-swiftshader.sh fetches it from Debian's chromium-common into .swiftshader/
test-swiftshader: deps .swiftshader/ok
	YOLO_WGSL_BACKEND=swiftshader $(NODE) scripts/run-tests.mjs 'kernels/'

.swiftshader/ok: scripts/setup-swiftshader.sh
	bash scripts/setup-swiftshader.sh

## test-subgroup16: the kernel tests on lavapipe with 16-lane subgroups (LP_NATIVE_VECTOR_WIDTH=512: llvmpipe's
## 512-bit vectors), a third subgroup size beside lavapipe's usual 8 and SwiftShader's 4
test-subgroup16: deps
	LP_NATIVE_VECTOR_WIDTH=512 YOLO_WGSL_BACKEND=lavapipe $(NODE) scripts/run-tests.mjs 'kernels/'

## gpu-check: the day a GPU is lent: doctor, make test, tune, bench kernels/network/peers at full sizes, the demo,
## each step under its own timeout, within 9 minutes, into gpu-check-out/ (summary.md). GPU_CHECK_QUICK=1: reduced form for CPUs
gpu-check: deps
	bash scripts/gpu-check.sh

## demo: adapter report + kernel self-check, then the main job: synthetic shapes -> train fixtures/cfg/demo.cfg
## from scratch -> val (last line `mAP@0.5 X`) -> runs/demo/detections.png (docs/demo.md; DEMO_ARGS="--max-batches 100")
DEMO_ARGS ?=
demo: deps
	$(CLI) doctor
	$(CLI) demo $(DEMO_ARGS)

doctor: deps
	$(CLI) doctor

## bench: kernels (quick: size 96), network and peers (TF.js webgpu/wasm, ONNX Runtime) on yolov3-tiny, then the
## chart: JSON + markdown + PNG in bench/results/ (docs/performance.md). Full sizes: make bench BENCH_FULL=1;
## per-part arguments: BENCH_KERNELS_ARGS, BENCH_NETWORK_ARGS, BENCH_PEERS_ARGS; BENCH_CFG=path/to.cfg;
## DARKNET=path/to/darknet adds AlexeyAB Darknet to the peers (built from its source: docs/performance.md)
BENCH_CFG ?= $(firstword $(wildcard $(YOLO_WGSL_SHARED)/darknet-cfg/yolov3-tiny.cfg ../shared/darknet-cfg/yolov3-tiny.cfg) fixtures/cfg/yolo-mini.cfg)
BENCH_OUT ?= bench/results
ifeq ($(BENCH_FULL),1)
BENCH_KERNELS_ARGS ?= --size 416 --json $(BENCH_OUT)/kernels-full-416.json --md $(BENCH_OUT)/kernels-full-416.md
BENCH_NETWORK_ARGS ?=
BENCH_PEERS_ARGS ?=
else
BENCH_KERNELS_ARGS ?= --quick --size 96 --json $(BENCH_OUT)/kernels-quick-96.json --md $(BENCH_OUT)/kernels-quick-96.md
BENCH_NETWORK_ARGS ?= --sizes 256,416 --batches 1,4 --train-sizes 256 --train-batches 1,4 --sweep-batches 1,2,4 --sweep-sizes 128,256,416 --iters 3 --min-iters 2
BENCH_PEERS_ARGS ?= --iters 3 --min-iters 2 --budget 30
endif
bench: deps
	$(CLI) bench kernels $(BENCH_KERNELS_ARGS)
	$(CLI) bench network --cfg $(BENCH_CFG) --out $(BENCH_OUT) $(BENCH_NETWORK_ARGS)
	$(CLI) bench peers --cfg $(BENCH_CFG) --out $(BENCH_OUT) $(BENCH_PEERS_ARGS) $(if $(DARKNET),--darknet $(DARKNET))
	$(CLI) bench chart --out $(BENCH_OUT) --cfg $(BENCH_CFG)

typecheck: deps
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p .

build: deps
	$(NODE) node_modules/typescript/bin/tsc -p .

clean:
	rm -rf dist

distclean: clean
	rm -rf node_modules .mesa .chromium

## browser: the library for browsers, one ES module: dist/browser/yolo-wgsl.js (examples/browser/index.html loads it)
browser: deps
	$(NODE) scripts/build-browser.mjs dist/browser/yolo-wgsl.js

## api-docs: API reference from the types (TypeDoc) into docs/api/
api-docs: deps
	$(NODE) node_modules/typedoc/bin/typedoc --options typedoc.json

## check-pack: npm pack, install the tarball in a fresh temporary project, type-check and run the examples (needs the npm registry)
check-pack: deps
	bash scripts/check-pack.sh
