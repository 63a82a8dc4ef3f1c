"""Start headpose_node on a camera, optionally with RViz.

    ros2 launch headpose_ros headpose.launch.py \\
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info use_rviz:=true

Arguments that mirror a params-file setting (backend, image_rotation, id_prefix, ros4hri) override the
file only when given. Everything is checked (headpose_ros.ros.launch_plan) before anything starts.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction

from headpose_ros.ros.launch_plan import launch_actions, plan_single_camera, rviz_installed

SHARE = get_package_share_directory("headpose_ros")
ARGUMENTS = [
    ("image", "/camera/image_raw", "sensor_msgs/Image topic of the camera"),
    ("camera_info", "/camera/camera_info", "sensor_msgs/CameraInfo topic of the same camera"),
    ("params_file", os.path.join(SHARE, "config", "headpose.yaml"), "parameters of the node (documented in the file)"),
    ("namespace", "", "namespace of the node and its topics (also the prefix of its face ids: several cameras)"),
    ("node_name", "headpose_node", "name of the node"),
    ("lifecycle", "false", "true: start headpose_lifecycle_node, a managed node (configure and activate it)"),
    ("backend", "", "landmarks, hopenet or fusion; empty: as the params file says"),
    ("image_rotation", "", "0, 90, 180 or 270 degrees clockwise that turn the images upright; empty: params file"),
    ("id_prefix", "", "prefix of the face ids and frames (tracking.id_prefix); empty: params file (auto)"),
    ("ros4hri", "", "true: also publish the ROS4HRI /humans/faces/... topics; empty: params file"),
    ("use_rviz", "false", "also start RViz (a warning, and no RViz, where rviz2 is not installed)"),
    ("rviz_config", os.path.join(SHARE, "config", "headpose.rviz"), "RViz configuration to load"),
]


def _setup(context):
    args = dict(context.launch_configurations)
    plan = plan_single_camera(args, {name for name, _, _ in ARGUMENTS}, rviz_installed())
    return launch_actions(plan)


def generate_launch_description():
    return LaunchDescription([DeclareLaunchArgument(name, default_value=default, description=text)
                              for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_setup)])
