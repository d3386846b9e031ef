//! The convolution every network here trains with: Burn's `conv2d` everywhere
//! except on Flex (the CPU), where a backend extension runs the kernels of
//! [`crate::model::cpu::conv`] (im2col + GEMM) and, for depthwise convs,
//! [`crate::model::cpu::depthwise`], forward *and* backward, with its own
//! autodiff node.
//!
//! Why: Burn's default conv backward on Flex computes the weight gradient as a
//! convolution whose kernel is the whole output gradient (GEMMs 9 columns wide)
//! and the input gradient through a transposed convolution; together they made
//! the full training step ~3x slower than PyTorch's. The gradients are the same
//! quantities, checked against Burn's own in `tests/fast_ops.rs`.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{DType, Device, Tensor};

use super::cpu::conv::{self, ConvShape};
use super::cpu::depthwise;
use super::cpu::flex::{flex_tensor, flex_values};

/// Convolution with a hand-written backward pass (dilation 1, `f32`; groups 1,
/// or depthwise with stride 1: groups = input = output channels).
///
/// Implemented for Flex (the kernels) and for `Autodiff<Flex>` (the graph node);
/// [`conv2d`] only routes tensors of those backends here.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FastConvBackend: Backend {
    /// `x` `[B, Cin, H, W]`, `weight` `[Cout, Cin, Kh, Kw]`, `bias` `[Cout]` → `[B, Cout, H', W']`,
    /// padded as `options` says with zeros, or reflecting the edge when `reflect`.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FloatTensor<Self>;
}

/// The backward kernels the autodiff node calls on the inner backend.
pub(crate) trait ConvKernels: Backend {
    /// Gradient of [`FastConvBackend::fast_conv2d`] with respect to `x` (`[B, Cin, H, W]`).
    fn conv_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FloatTensor<Self>;

    /// Gradient with respect to `weight` (`[Cout, Cin, Kh, Kw]`).
    fn conv_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FloatTensor<Self>;

    /// Gradient with respect to `bias` (`[Cout]`).
    fn conv_bias_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FloatTensor<Self>;
}

/// The kernels' geometry for these operands.
fn shape_of(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
    reflect: bool,
) -> ConvShape {
    let [batch, cin, h, w] = x.shape().dims();
    let [cout, _, kh, kw] = weight.shape().dims();
    let [(pt, pb), (pl, pr)] = options.padding;
    let [sh, sw] = options.stride;
    ConvShape {
        batch,
        cin,
        h,
        w,
        cout,
        kh,
        kw,
        sh,
        sw,
        pad_top: pt,
        pad_left: pl,
        reflect,
        oh: (h + pt + pb - kh) / sh + 1,
        ow: (w + pl + pr - kw) / sw + 1,
    }
}

impl FastConvBackend for Flex {
    fn fast_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FlexTensor {
        let s = shape_of(&x, &weight, &options, reflect);
        let (x, weight, bias) = (flex_values(&x), flex_values(&weight), flex_values(&bias));
        let out = if options.groups > 1 {
            depthwise::forward(&s, &x, &weight, &bias)
        } else {
            conv::forward(&s, &x, &weight, &bias)
        };
        flex_tensor(out, [s.batch, s.cout, s.oh, s.ow])
    }
}

impl ConvKernels for Flex {
    fn conv_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FlexTensor {
        let s = shape_of(&x, &weight, &options, reflect);
        let (weight, grad) = (flex_values(&weight), flex_values(&output_grad));
        let dx = if options.groups > 1 {
            depthwise::input_grad(&s, &weight, &grad)
        } else {
            conv::input_grad(&s, &weight, &grad)
        };
        flex_tensor(dx, [s.batch, s.cin, s.h, s.w])
    }

    fn conv_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FlexTensor {
        let s = shape_of(&x, &weight, &options, reflect);
        let (x, grad) = (flex_values(&x), flex_values(&output_grad));
        let dw = if options.groups > 1 {
            depthwise::weight_grad(&s, &x, &grad)
        } else {
            conv::weight_grad(&s, &x, &grad)
        };
        flex_tensor(dw, [s.cout, s.cin / options.groups, s.kh, s.kw])
    }

    fn conv_bias_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FlexTensor {
        let s = shape_of(&x, &weight, &options, reflect);
        let db = conv::bias_grad(&s, &flex_values(&output_grad));
        flex_tensor(db, [s.cout])
    }
}

/// The autodiff node: keeps `x` and `weight`, and asks the inner backend for
/// only the gradients some parent needs (a frozen VGG gets no weight gradient).
#[derive(Debug)]
struct FastConvNode;

impl<B: Backend + ConvKernels> Backward<B, 3> for FastConvNode {
    type State = (NodeId, NodeId, ConvOptions<2>, bool);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_id, w_id, options, reflect) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_id);
        let w = checkpointer.retrieve_node_output::<FloatTensor<B>>(w_id);
        if let Some(node) = node_x {
            let g =
                B::conv_x_backward(x.clone(), w.clone(), grad.clone(), options.clone(), reflect);
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = node_w {
            let g = B::conv_weight_backward(
                x.clone(),
                w.clone(),
                grad.clone(),
                options.clone(),
                reflect,
            );
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = node_b {
            let g = B::conv_bias_backward(x, w, grad, options, reflect);
            grads.register::<B>(node.id, g);
        }
    }
}

impl<B: Backend + FastConvBackend + ConvKernels, C: CheckpointStrategy> FastConvBackend
    for Autodiff<B, C>
{
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
        reflect: bool,
    ) -> FloatTensor<Self> {
        match FastConvNode
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_id = prep.checkpoint(&x);
                let w_id = prep.checkpoint(&weight);
                let out = B::fast_conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    options.clone(),
                    reflect,
                );
                prep.finish((x_id, w_id, options, reflect), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                options,
                reflect,
            )),
        }
    }
}

/// Whether [`conv2d`] takes the CPU kernels for this device, these options and
/// `[input, output]` channels: groups 1, or depthwise (groups = both channel
/// counts) with stride 1; dilation 1; `f32`; on Flex.
pub fn uses_cpu_kernels(
    device: &Device,
    options: &ConvOptions<2>,
    [cin, cout]: [usize; 2],
    dtype: DType,
) -> bool {
    let depthwise = options.groups == cin && cout == cin && options.stride == [1, 1];
    device.clone().inner() == Device::flex()
        && (options.groups == 1 || depthwise)
        && options.dilation == [1, 1]
        && dtype == DType::F32
}

/// 2-D convolution, `x` `[B, Cin, H, W]` → `[B, Cout, H', W']`, with zero padding
/// from `options`. Same results and gradients as `burn::tensor::module::conv2d`;
/// on Flex (with or without autodiff) it runs the CPU kernels.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !takes_cpu_kernels(&x, &weight, &options, false) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    cpu_conv2d(x, weight, bias, options, false)
}

/// 2-D convolution of `x` `[B, Cin, H, W]` reflect-padded by `options.padding`
/// (PyTorch's `ReflectionPad2d` then a conv without padding) → `[B, Cout, H', W']`.
/// On Flex the CPU kernels read the reflection in place (no padded copy, and no
/// pad backward); elsewhere Burn pads, then convolves.
pub fn conv2d_reflect(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !takes_cpu_kernels(&x, &weight, &options, true) {
        let [(pt, pb), (pl, pr)] = options.padding;
        // (No padding at all, e.g. a 1x1 conv, is no copy: Burn's pad would make one.)
        let x = match pt + pb + pl + pr {
            0 => x,
            _ => x.pad((pl, pr, pt, pb), PadMode::Reflect),
        };
        let options = ConvOptions::new_with_padding(
            options.stride,
            [(0, 0), (0, 0)],
            options.dilation,
            options.groups,
        );
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    cpu_conv2d(x, weight, bias, options, true)
}

/// [`uses_cpu_kernels`] for these operands, and sizes the kernels take: an input
/// smaller than the kernel, or (`reflect`) a side's padding as wide as the input,
/// is Burn's to report (as PyTorch does).
fn takes_cpu_kernels(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
    reflect: bool,
) -> bool {
    let ([_, cin, h, w], [cout, _, kh, kw]) = (x.dims(), weight.dims());
    let [(pt, pb), (pl, pr)] = options.padding;
    let fits = h + pt + pb >= kh && w + pl + pr >= kw;
    let reflectable = !reflect || (pt.max(pb) < h && pl.max(pr) < w);
    fits && reflectable && uses_cpu_kernels(&x.device(), options, [cin, cout], x.dtype())
}

/// The extension op (callers checked [`uses_cpu_kernels`] and the sizes).
fn cpu_conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    reflect: bool,
) -> Tensor<4> {
    // A zero bias keeps one node shape; untracked, it costs no gradient.
    let bias = bias.unwrap_or_else(|| Tensor::zeros([weight.dims()[0]], &x.device()));
    let out = <Dispatch as FastConvBackend>::fast_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        options,
        reflect,
    );
    Tensor::from_dispatch(out)
}

/// `conv.forward(x)` through [`conv2d`] (the same padding rule as Burn's
/// `Conv2d::forward`); the CPU kernels on Flex. `x` `[B, Cin, H, W]` →
/// `[B, Cout, H', W']`.
pub(crate) fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let (rows, cols) = match conv.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        // TF/Keras "same": the extra pixel goes at the end.
        PaddingConfig2d::Same => (
            same_padding(conv.kernel_size[0], conv.stride[0], h),
            same_padding(conv.kernel_size[1], conv.stride[1], w),
        ),
    };
    let options =
        ConvOptions::new_with_padding(conv.stride, [rows, cols], conv.dilation, conv.groups);
    conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// `(begin, end)` padding that keeps `ceil(n / stride)` outputs (Burn's rule).
fn same_padding(kernel: usize, stride: usize, n: usize) -> (usize, usize) {
    let out = n.div_ceil(stride);
    let total = (out.saturating_sub(1) * stride + kernel).saturating_sub(n);
    (total / 2, total - total / 2)
}
