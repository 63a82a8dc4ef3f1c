"""headpose_node: placeholder until the adapter lands."""


def main(args=None) -> int:
    import rclpy
    rclpy.init(args=args)
    node = rclpy.create_node("headpose_node")
    node.get_logger().info("headpose_node skeleton")
    rclpy.shutdown()
    return 0
