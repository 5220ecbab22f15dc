"""mmcv_tv_ops: the compiled operators HTC needs from mmcv, provided by torchvision.ops, for
mmcv-lite (which ships mmcv's Python but not its compiled extension, mmcv._ext).

    import mmcv_tv_ops; mmcv_tv_ops.install()   # before anything imports mmcv.ops

install() puts a module in sys.modules["mmcv._ext"] so that mmcv.ops imports; it has
the four kernels HTC calls (nms, roi_align_forward, deform_conv_forward for DCN v1 and
modulated_deform_conv_forward for DCN v2), with the signatures mmcv's Python wrappers
call them with, each writing into the output tensor the wrapper hands it as mmcv's kernel
does. Every other name exists (mmcv checks that at import) and raises when called, so a
reference never silently runs an operator we did not provide. Forward only: these are
references for inference.

Why torchvision's kernels are the same computation: nms with offset 0 (mmdetection 3.x)
is the same greedy loop over boxes sorted by score; roi_align with avg pooling takes the
same (batch index, x1, y1, x2, y2) rows, the same half-pixel shift when aligned and the
same adaptive sampling (ceil(roi size / output size)) when sampling_ratio is 0;
deform_conv2d reads offsets in mmcv's layout ((dy, dx) per kernel tap, per deformable
group) and takes the modulation mask for v2."""
import sys
import types

import torch
import torchvision.ops as tv


def _nms(boxes, scores, iou_threshold, offset=0):
    if offset != 0:
        raise NotImplementedError("mmcv_tv_ops: nms with offset=%d (mmdetection v1's +1 areas) "
                                  "has no torchvision kernel" % offset)
    return tv.nms(boxes.float(), scores.float(), float(iou_threshold))


def _roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width, spatial_scale,
                       sampling_ratio, pool_mode, aligned):
    if pool_mode != 1:
        raise NotImplementedError("mmcv_tv_ops: roi_align with max pooling")
    out = tv.roi_align(input, rois, (aligned_height, aligned_width), spatial_scale=spatial_scale,
                       sampling_ratio=sampling_ratio, aligned=bool(aligned))
    output.copy_(out)


def _deform_conv_forward(input, weight, offset, output, columns, ones, kW, kH, dW, dH, padW, padH, dilationW,
                         dilationH, group, deformable_group, im2col_step):
    if group != 1:
        raise NotImplementedError("mmcv_tv_ops: grouped deformable convolution")
    out = tv.deform_conv2d(input, offset, weight, None, stride=(dH, dW), padding=(padH, padW),
                           dilation=(dilationH, dilationW))
    output.copy_(out)


def _modulated_deform_conv_forward(input, weight, bias, ones, offset, mask, output, columns, kernel_h, kernel_w,
                                   stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, group,
                                   deformable_group, with_bias):
    if group != 1:
        raise NotImplementedError("mmcv_tv_ops: grouped deformable convolution")
    out = tv.deform_conv2d(input, offset, weight, bias if with_bias else None, stride=(stride_h, stride_w),
                           padding=(pad_h, pad_w), dilation=(dilation_h, dilation_w), mask=mask)
    output.copy_(out)


PROVIDED = {
    "nms": _nms,
    "roi_align_forward": _roi_align_forward,
    "deform_conv_forward": _deform_conv_forward,
    "modulated_deform_conv_forward": _modulated_deform_conv_forward,
}


class _Ext(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def missing(*args, **kwargs):
            raise NotImplementedError("mmcv_tv_ops: mmcv op %s is not provided (mmcv-lite has no compiled ops)"
                                      % name)
        return missing


def install():
    """Makes mmcv.ops importable with the kernels above; call before importing mmdet."""
    if "mmcv._ext" in sys.modules:
        return
    if "mmcv.ops" in sys.modules:
        raise RuntimeError("mmcv_tv_ops.install() must run before mmcv.ops is imported")
    import mmcv
    ext = _Ext("mmcv._ext")
    for k, v in PROVIDED.items():
        setattr(ext, k, v)
    sys.modules["mmcv._ext"] = ext
    mmcv._ext = ext
