# headpose_ros developer entry points. `make help` lists them.
#
# `make setup` builds everything into .venv/:
#  * No ROS 2 sourced (the default, and CI): a venv with ROS 2 Jazzy from PyPI
#    wheels (.ci/requirements-ros-jazzy.txt). colcon then builds this package
#    from CMakeLists.txt, exactly as a ROS user's `colcon build` does, into the
#    venv itself, so nothing needs to be sourced afterwards.
#  * A ROS 2 distro sourced (ROS_DISTRO set): a venv with --system-site-packages
#    for the pip-only tools, and the same colcon build against the sourced ROS.
#    Run `rosdep install --from-paths . -y --ignore-src` first, and
#    `source .venv/setup.bash` before using the result outside make.
# Every step is guarded by a stamp file under .venv/.stamps that depends on the
# step's inputs, so a second `make setup` only redoes what changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
ABS_VENV := $(abspath $(VENV))
# Shell snippet: the venv's site-packages, where the package's Python code goes.
SITE_PACKAGES = $$($(VPY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# The ros-wheels-bootstrapper .pth re-execs every venv python once with
# LD_LIBRARY_PATH set, unless this guard is set. A make started from another
# venv's python must not pass that venv's guard on.
unexport _ROS_WHEELS_BOOTSTRAP_COMPLETE

TF2_STUB   := .ci/ros_stubs/tf2_msgs
HRI_STUB   := .ci/ros_stubs/hri_msgs
MSG_FILES  := $(wildcard msg/*.msg)
STUB_FILES := $(shell find $(TF2_STUB) -type f)
HRI_STUB_FILES := $(shell find $(HRI_STUB) -type f)

ifdef ROS_DISTRO
  MODE := ros-$(ROS_DISTRO)
  # The sourced ROS provides colcon, CMAKE_PREFIX_PATH and tf2_msgs, and
  # (through rosdep) hri_msgs and the runtime Python packages.
  COLCON := colcon
  COLCON_ENV :=
  VENV_FLAGS := --system-site-packages
  ROS_REQUIREMENTS :=
  TF2_STAMP :=
  HRI_STAMP :=
  # The generated message libraries live in .venv/lib: add the venv's colcon
  # environment on top of the sourced ROS before running anything (colcon's
  # scripts do not work under `set -u`).
  RUN := set +u && source $(VENV)/local_setup.bash && set -u &&
else
  MODE := pypi-jazzy
  COLCON := $(VENV)/bin/colcon
  COLCON_ENV := CMAKE_PREFIX_PATH=$(ABS_VENV)
  VENV_FLAGS :=
  ROS_REQUIREMENTS := .ci/requirements-ros-jazzy.txt
  TF2_STAMP := $(STAMPS)/tf2_msgs
  HRI_STAMP := $(STAMPS)/hri_msgs
  # Nothing to source: the bootstrapper sets LD_LIBRARY_PATH (.venv/lib included).
  RUN :=
endif

# colcon builds into the venv, which is also the prefix CMake searches. Its
# build and log directories go under .venv too, so the source tree stays clean.
# --symlink-install: the installed headpose_ros/*.py are symlinks to the source
# files, so edits take effect without rebuilding (new files need a rebuild,
# see the installed-files stamp).
COLCON_BUILD = $(COLCON_ENV) $(COLCON) --log-base $(VENV)/log build \
  --build-base $(VENV)/build --install-base $(VENV) --merge-install --symlink-install

# (--cmake-args takes every argument after it, so it comes last)
COLCON_CMAKE_ARGS = --cmake-args -DPython3_EXECUTABLE=$(ABS_VENV)/bin/python -DBUILD_TESTING=OFF

# A venv made from the wheels and a sourced ROS (or two ROS distros) must not be mixed.
ifeq ($(filter-out help clean,$(or $(MAKECMDGOALS),help)),)
else ifneq ($(wildcard $(VENV)/.mode),)
  ifneq ($(shell cat $(VENV)/.mode),$(MODE))
    $(error $(VENV) was made for '$(shell cat $(VENV)/.mode)', but this is '$(MODE)': run 'make clean' first)
  endif
endif

.PHONY: help setup test demo eval bench clean FORCE

help:
	@echo "headpose_ros make targets:"
	@echo "  setup   create .venv/ (ROS 2 Jazzy from PyPI, or on top of a sourced ROS 2), build the"
	@echo "          messages and the package into it, and run 'headpose-ros prepare' (models)"
	@echo "  test    setup, then run the test suite: .venv/bin/python -m pytest test -ra"
	@echo "          (more pytest arguments: make test PYTEST_ARGS='-k pnp -x')"
	@echo "  demo    setup, then 'headpose-ros demo' (make demo BACKEND=hopenet, DEMO_ARGS='--help')"
	@echo "  eval    setup, then render ground-truth sets (out/synth: photos, out/synth_video: video),"
	@echo "          evaluate every backend on them and check consistency on real photos: tables and"
	@echo "          plots in out/eval/"
	@echo "          (EVAL_DATASET=/path/to/AFLW2000 also evaluates a dataset of yours)"
	@echo "  bench   setup, then 'headpose-ros bench': timings, tables and a chart in out/bench/"
	@echo "  clean   remove .venv/ and build leftovers (the model cache outside the tree stays)"
	@echo "PYTHON=$(PYTHON) makes the venv (CPython 3.10 to 3.12). Mode now: $(MODE)"

# --- setup ------------------------------------------------------------------------

setup: $(STAMPS)/build
	@# A pip-installed headpose_ros has headpose_node in bin/ (setup.py's
	@# console_scripts); give the colcon-built venv the same command.
	@ln -sfn ../lib/headpose_ros/headpose_node $(VENV)/bin/headpose_node
	@ln -sfn ../lib/headpose_ros/headpose_lifecycle_node $(VENV)/bin/headpose_lifecycle_node
	@# Fetch, convert and verify the models and sample photos, into a cache
	@# outside the source tree (quick when the cache is complete).
	$(RUN) $(VENV)/bin/headpose-ros prepare

# 1. The venv. It records which mode made it (checked above).
$(STAMPS)/venv:
ifdef ROS_DISTRO
	@# Any Python will do that the sourced ROS works with.
	@$(PYTHON) -c 'import rclpy' 2>/dev/null || { \
	  echo "error: '$(PYTHON)' cannot import rclpy from the sourced ROS $(ROS_DISTRO); use the Python it was built for: make setup PYTHON=/usr/bin/python3" >&2; exit 1; }
	@command -v colcon >/dev/null || { \
	  echo "error: ROS_DISTRO=$(ROS_DISTRO) is set but colcon is missing (apt-get install python3-colcon-common-extensions)" >&2; exit 1; }
else
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' || { \
	  echo "error: '$(PYTHON)' is not CPython 3.10, 3.11 or 3.12 (the ROS 2 wheels exist for those only)." \
	       "Choose another: make setup PYTHON=python3.11" >&2; exit 1; }
	@# The messages are compiled, against this Python's headers.
	@for tool in cmake c++ make; do command -v $$tool >/dev/null || { \
	  echo "error: '$$tool' not found. Debian/Ubuntu: apt-get install cmake g++ make python3-dev python3-venv" >&2; exit 1; }; done
	@$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || { \
	  echo "error: '$(PYTHON)' has no C headers (Python.h). Debian/Ubuntu: apt-get install python3-dev" >&2; exit 1; }
endif
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	@echo "$(MODE)" > $(VENV)/.mode
	@mkdir -p $(STAMPS)
	@touch $@

# 2. Python packages: the ROS wheels (no ROS sourced), the runtime requirements
#    and setup.py's extras, in one pip call so that one resolver sees them all.
#    The package itself is not pip-installed here: colcon installs it (step 3).
$(STAMPS)/pip: $(STAMPS)/venv requirements.txt setup.py $(ROS_REQUIREMENTS)
	$(PYTHON) .ci/extras.py > $(VENV)/requirements-extras.txt
ifdef ROS_DISTRO
	@# Keep the numpy that ROS's compiled modules were built against.
	$(VPY) -c 'import numpy; print("numpy==" + numpy.__version__)' > $(VENV)/constraints.txt
	$(VPY) -m pip install -q --disable-pip-version-check -c $(VENV)/constraints.txt \
	  -r $(VENV)/requirements-extras.txt
	@$(VPY) -c 'import numpy, cv2, onnxruntime, transforms3d, yaml' || { \
	  echo "error: runtime dependencies are missing; run: rosdep install --from-paths . -y --ignore-src" >&2; exit 1; }
else
	$(VPY) -m pip install -q --disable-pip-version-check \
	  -r $(ROS_REQUIREMENTS) -r requirements.txt -r $(VENV)/requirements-extras.txt
	@# The wheels' CMake files point at their build machine's Python headers.
	$(VPY) .ci/fix_wheel_cmake_paths.py
endif
	@touch $@

# 3a. tf2_msgs has no wheel: build the TFMessage-only stand-in, unless some
#     other tf2_msgs is installed. (With a sourced ROS this step and 3b do not exist.)
$(STAMPS)/tf2_msgs: $(STAMPS)/pip $(STUB_FILES)
	@if $(VPY) -c 'import tf2_msgs' 2>/dev/null && ! cmp -s $(VENV)/share/tf2_msgs/package.xml $(TF2_STUB)/package.xml; then \
	  echo "tf2_msgs is already installed: not building the stand-in in $(TF2_STUB)"; \
	else \
	  echo "+ colcon build --paths $(TF2_STUB)"; \
	  $(COLCON_BUILD) --paths $(TF2_STUB) $(COLCON_CMAKE_ARGS); \
	fi
	@touch $@

# 3b. hri_msgs (ROS4HRI) has no wheel either: build the stand-in with the few
#     messages this package publishes, unless some other hri_msgs is installed.
#     (Order-only on tf2_msgs: two colcon runs must not write one prefix at once.)
$(STAMPS)/hri_msgs: $(STAMPS)/pip $(HRI_STUB_FILES) | $(STAMPS)/tf2_msgs
	@if $(VPY) -c 'import hri_msgs' 2>/dev/null && ! cmp -s $(VENV)/share/hri_msgs/package.xml $(HRI_STUB)/package.xml; then \
	  echo "hri_msgs is already installed: not building the stand-in in $(HRI_STUB)"; \
	else \
	  echo "+ colcon build --paths $(HRI_STUB)"; \
	  $(COLCON_BUILD) --paths $(HRI_STUB) $(COLCON_CMAKE_ARGS); \
	fi
	@touch $@

# The files that colcon installs from the source tree (as symlinks). Listed on
# every run, but the list file is rewritten only when it changes, so adding or
# removing a file triggers a rebuild and editing one does not.
$(STAMPS)/installed-files: FORCE | $(STAMPS)/venv
	@find headpose_ros launch config -type f ! -name '*.pyc' ! -path '*/__pycache__/*' | LC_ALL=C sort > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# 3c. This package: messages, Python package, launchers, launch/ and config/.
#     (Order-only on the stand-ins: two colcon runs must not write one prefix at once.)
$(STAMPS)/build: $(STAMPS)/pip $(STAMPS)/installed-files CMakeLists.txt package.xml $(MSG_FILES) | $(TF2_STAMP) $(HRI_STAMP)
	@# Drop symlinks left dangling by removed source files.
	@site=$(SITE_PACKAGES); if [ -d "$$site/headpose_ros" ]; then find "$$site/headpose_ros" -xtype l -delete; fi
	$(COLCON_BUILD) --paths . $(COLCON_CMAKE_ARGS)
	@touch $@

# --- test / demo ------------------------------------------------------------------

# Each run gets its own DDS domain and stays on this machine (DDS discovery is
# machine-wide); set ROS_DOMAIN_ID to choose the domain.
ROS_DOMAIN_ID ?= $(shell echo $$((RANDOM % 100 + 1)))
ifeq ($(ROS_DISTRO),humble)
  LOCALHOST_ENV := ROS_LOCALHOST_ONLY=1
else
  LOCALHOST_ENV := ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
endif
PYTEST_ARGS ?=

test: setup
	$(RUN) ROS_DOMAIN_ID=$(ROS_DOMAIN_ID) $(LOCALHOST_ENV) \
	  $(VPY) -m pytest test -ra $(PYTEST_ARGS)

DEMO_ARGS ?=
# make demo BACKEND=hopenet (or fusion): the estimation method, as the launch file's backend:=
BACKEND ?= landmarks
demo: setup
	$(RUN) $(VENV)/bin/headpose-ros demo --backend $(BACKEND) $(DEMO_ARGS)

# --- eval / bench -----------------------------------------------------------------

# The ground-truth sets are rendered once per setting (delete out/synth* to redo them), and again when the
# face model changes (its axes are the truth's).
SYNTH_COUNT ?= 300
SYNTH_SEED ?= 0
EVAL_DATASET ?=
FACE_MODEL := headpose_ros/data/face_model.csv
out/synth/labels.json: $(FACE_MODEL) | setup
	$(RUN) $(VENV)/bin/headpose-ros synth --out out/synth --count $(SYNTH_COUNT) --seed $(SYNTH_SEED)

out/synth_hard/labels.json: $(FACE_MODEL) | setup
	$(RUN) $(VENV)/bin/headpose-ros synth --hard --out out/synth_hard --count $(SYNTH_COUNT) --seed $(SYNTH_SEED)

out/synth_video/labels.json: $(FACE_MODEL) | setup
	$(RUN) $(VENV)/bin/headpose-ros synth --video --out out/synth_video --seed $(SYNTH_SEED)

eval: setup out/synth/labels.json out/synth_hard/labels.json out/synth_video/labels.json
	$(RUN) $(VENV)/bin/headpose-ros eval out/synth --out out/eval/synth
	$(RUN) $(VENV)/bin/headpose-ros eval out/synth_hard --out out/eval/synth_hard
	$(RUN) $(VENV)/bin/headpose-ros eval --consistency --out out/eval/consistency
	$(RUN) $(VENV)/bin/headpose-ros eval out/synth_video --out out/eval/video
	@if [ -n "$(EVAL_DATASET)" ]; then \
	  $(RUN) $(VENV)/bin/headpose-ros eval "$(EVAL_DATASET)" --out out/eval/dataset; fi

BENCH_ARGS ?=
bench: setup
	$(RUN) ROS_DOMAIN_ID=$(ROS_DOMAIN_ID) $(LOCALHOST_ENV) \
	  $(VENV)/bin/headpose-ros bench --out out/bench $(BENCH_ARGS)

# --- clean ------------------------------------------------------------------------

clean:
	rm -rf $(VENV) build install log .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

FORCE:
