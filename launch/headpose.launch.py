"""Start headpose_node on a camera, optionally with RViz.

    ros2 launch headpose_ros headpose.launch.py \\
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info use_rviz:=true
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("headpose_ros")
    args = [
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic of the camera"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="sensor_msgs/CameraInfo topic of the same camera"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "headpose.yaml"),
                              description="parameters of headpose_node (documented in the file)"),
        DeclareLaunchArgument("backend", default_value="landmarks",
                              description="estimation method (overrides the params file)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node and its ~/heads topic"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="also start RViz with config/headpose.rviz"),
        DeclareLaunchArgument("rviz_config", default_value=os.path.join(share, "config", "headpose.rviz"),
                              description="RViz configuration to load"),
    ]
    node = Node(
        package="headpose_ros",
        executable="headpose_node",
        name="headpose_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), {"backend": LaunchConfiguration("backend")}],
        remappings=[("image", LaunchConfiguration("image")), ("camera_info", LaunchConfiguration("camera_info"))],
        output="screen",
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", LaunchConfiguration("rviz_config")],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
        output="screen",
    )
    return LaunchDescription(args + [node, rviz])
