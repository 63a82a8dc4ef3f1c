"""The rclpy adapter around the engine. Only this package imports rclpy."""
