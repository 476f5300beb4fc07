"""torch.compile of the training step's loss terms (train_pair's ``compile`` lever).

The networks pad their convolutions by replicating the edge (``padding_mode="replicate"``).  Inductor
(torch 2.13, CPU) compiles that op's backward with a wrong stride assumption and stops with
"AssertionError: expected size 8==8, stride 1==1024 ... Error in op: aten.replication_pad2d_backward"
(measured with bench/gpu_check.py --device cpu --compile-on-cpu).  While compiling, those convolutions pad
by concatenating copies of their edge rows and columns instead: the same numbers (see edge_pad), built from
slices and cat, which inductor handles.  Eager runs (inference, ONNX export) keep the plain op.
"""
import types


def edge_pad(x, ph, pw):
    """``x`` (..., H, W) with ``ph`` rows and ``pw`` columns of its edge values added on each side; equal
    to F.pad(x, (pw, pw, ph, ph), mode="replicate")."""
    import torch

    if pw:
        x = torch.cat([x[..., :1].expand(*x.shape[:-1], pw), x, x[..., -1:].expand(*x.shape[:-1], pw)], -1)
    if ph:
        w = x.shape[-1]
        x = torch.cat([x[..., :1, :].expand(*x.shape[:-2], ph, w), x,
                       x[..., -1:, :].expand(*x.shape[:-2], ph, w)], -2)
    return x


def _conv_forward(self, input, weight, bias):
    import torch
    import torch.nn.functional as F

    if not torch.compiler.is_compiling():
        return type(self)._conv_forward(self, input, weight, bias)
    ph, pw = self.padding
    return F.conv2d(edge_pad(input, ph, pw), weight, bias, self.stride, 0, self.dilation, self.groups)


def compiled_terms(terms, model, mode):
    """``torch.compile(terms, mode=mode)`` with ``model``'s replicate-padded convolutions made compilable."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.padding_mode == "replicate" and m.padding != (0, 0):
            m._conv_forward = types.MethodType(_conv_forward, m)
    return torch.compile(terms, mode=mode)
