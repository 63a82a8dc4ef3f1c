"""Model conversion at setup (torch, h5py): rebuild published networks in torch and export ONNX.

Nothing here runs at inference time; the engine only loads the ONNX files.
"""
