"""One headpose_node per camera, from a cameras file, each in its camera's namespace.

    ros2 launch headpose_ros multi_camera.launch.py cameras_file:=/path/to/cameras.yaml

config/cameras.yaml documents the file. Each node is /<camera name>/headpose_node; its face ids, and so its
face_<id> / gaze_<id> frames and its /diagnostics status, carry the camera's name, so cameras never collide.
Faces of every camera are TF children of their camera's optical frame: look them up in any common frame.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction

from headpose_ros.ros.launch_plan import launch_actions, plan_cameras, rviz_installed

SHARE = get_package_share_directory("headpose_ros")
ARGUMENTS = [
    ("cameras_file", os.path.join(SHARE, "config", "cameras.yaml"), "the cameras: name, image, camera_info, "
     "parameters (see config/cameras.yaml)"),
    ("params_file", os.path.join(SHARE, "config", "headpose.yaml"), "parameters of every node (each camera's "
     "own parameters go on top)"),
    ("lifecycle", "false", "true: managed nodes (headpose_lifecycle_node)"),
    ("backend", "", "landmarks, hopenet or fusion for every camera; empty: as the params file says"),
    ("image_rotation", "", "for every camera; empty: params file (a camera's own parameters win)"),
    ("id_prefix", "", "for every camera; empty: params file (auto: the camera's name)"),
    ("ros4hri", "", "true: also publish the ROS4HRI topics; empty: params file"),
    ("use_rviz", "false", "also start RViz, showing the first camera's node"),
    ("rviz_config", os.path.join(SHARE, "config", "headpose.rviz"), "RViz configuration to load"),
]


def _setup(context):
    args = dict(context.launch_configurations)
    plan = plan_cameras(args, {name for name, _, _ in ARGUMENTS}, rviz_installed())
    return launch_actions(plan)


def generate_launch_description():
    return LaunchDescription([DeclareLaunchArgument(name, default_value=default, description=text)
                              for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_setup)])
