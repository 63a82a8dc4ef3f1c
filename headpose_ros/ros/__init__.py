"""The rclpy adapter around the engine: the product's ROS code (tools/ros_harness drives it from outside)."""
