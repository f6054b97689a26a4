# The README's two commands: `make demo` (the main job on the bundled data) and `make test`.
# Both first install the Debian packages they need when pkg-config cannot find them.
SWIFT ?= swift
APT_PACKAGES = libopenblas-dev libhdf5-dev pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps pydeps build release test demo bench bench-model bench-gram clean

# The CPU the Swift kernels are compiled for (Package.swift): Haswell-class on an x86-64 CPU with
# AVX2 and FMA, the baseline otherwise; `make TI_TARGET_CPU= …` opts out (README, "Build flags").
ifeq ($(origin TI_TARGET_CPU), undefined)
TI_TARGET_CPU := $(shell [ "$$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null && echo haswell)
endif
export TI_TARGET_CPU

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openblas hdf5; then \
		echo "installing $(APT_PACKAGES) with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

# Python's safetensors package reads the checkpoints we write (one round-trip test calls it);
# h5py crafts an interference file the analysis never writes (one bad-input test).
pydeps:
	@python3 -c "import safetensors, numpy, h5py" 2>/dev/null || python3 -m pip install -q safetensors numpy h5py

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The tests run in parallel in one process, and some spawn children (the CLI binary, python3). Until
# a child execs it holds a copy of every open descriptor, so HDF5's advisory lock on a file another
# test has just closed lives on in that copy, and reopening the file fails with EAGAIN (seen once,
# stop 44: "unable to lock file, errno = 11"). No test relies on HDF5's locks; the commands keep them.
test: deps pydeps
	$(SWIFT) build --build-tests
	HDF5_USE_FILE_LOCKING=FALSE $(SWIFT) test --skip-build

demo: release
	.build/release/interference demo --out reports/demo

clean:
	rm -rf .build

bench-model: release
	.build/release/ModelBenchmark | tee reports/benchmarks-model.txt

# The probe's Float64 Gram against sgemm and dgemm (issue 5).
bench-gram: release
	.build/release/GramBenchmark | tee reports/benchmarks-gram.txt

# Swift vs PyTorch vs JAX on the same checkpoint and mini-batch (issue 6); writes reports/benchmarks.md.
# The peers run from a local virtual environment made on first use (CPU wheels). PyTorch is taken from
# $(TORCH_PYTHON) when that interpreter has it, else installed into the venv too.
BENCH_VENV ?= .venv-bench
TORCH_PYTHON ?= /opt/refvenv/bin/python
# PyPI's Linux wheel of PyTorch is the CUDA build (about 6 GB installed; it runs on the CPU too), so the
# CPU-only wheel is tried first: from PyTorch's own index or pip's configured find-links, without its
# dependencies (that index lacks some), which the second install then takes from PyPI.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
BENCH_ARGS ?=

bench: release
	@test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/python -c "import jax, numpy, safetensors, h5py" 2>/dev/null || \
		$(BENCH_VENV)/bin/python -m pip install -q "jax[cpu]" numpy safetensors h5py
	@if [ -x "$(TORCH_PYTHON)" ] && "$(TORCH_PYTHON)" -c "import torch, safetensors, numpy" 2>/dev/null; then :; \
	else $(BENCH_VENV)/bin/python -c "import torch" 2>/dev/null || \
		{ $(BENCH_VENV)/bin/python -m pip install -q --no-deps --timeout 10 --retries 0 torch --index-url $(TORCH_CPU_INDEX) && \
		  $(BENCH_VENV)/bin/python -m pip install -q torch; } || \
		$(BENCH_VENV)/bin/python -m pip install -q torch; fi
	TORCH_PYTHON="$(TORCH_PYTHON)" $(BENCH_VENV)/bin/python Benchmarks/run_bench.py $(BENCH_ARGS)
