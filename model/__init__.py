"""Pure PyTorch/NumPy core of In-between: no qgis import anywhere below this package.

Heavy modules (torch, cv2, ot, onnxruntime) are imported inside the submodules that need them,
so importing ``model`` itself is cheap.
"""
