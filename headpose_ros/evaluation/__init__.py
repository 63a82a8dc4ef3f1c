"""Measuring the engine: dataset readers, metrics, ground-truth synthesis, consistency checks.

ROS-free, like the engine it measures. The ``headpose-ros eval`` and
``headpose-ros synth`` commands (``headpose_ros.tools``) are its front ends.
"""
