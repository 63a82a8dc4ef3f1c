"""The ROS-free perception engine: detect, track, estimate, smooth."""
