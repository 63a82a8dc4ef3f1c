"""headpose_ros: 3D head pose of every visible person, for ROS 2.

The perception engine (``headpose_ros.core``) is plain Python (numpy, OpenCV,
ONNX Runtime) and knows nothing of ROS. ``headpose_ros.ros`` adapts it to
rclpy, and ``headpose_ros.tools`` holds the ``headpose-ros`` command-line tool.
On a ROS install the generated messages live beside them in
``headpose_ros.msg``.
"""

__version__ = "0.1.0"

# The generated messages (headpose_ros.msg) exist only in the installed copy of
# this package. Python started in a source checkout imports the source directory
# first; extending __path__ over every `headpose_ros` directory on sys.path lets
# it find them there too (and changes nothing for the installed copy).
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
