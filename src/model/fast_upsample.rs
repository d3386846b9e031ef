//! Bilinear upsampling for training: on Flex (the CPU) a backend extension with
//! its own autodiff node ([`crate::model::cpu::resize`]); elsewhere the matmul
//! formulation of [`crate::model::upsample`] (Burn's `interpolate` has no
//! backward on wgpu).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Device, Tensor};

use super::cpu::flex::{flex_tensor, flex_values};
use super::cpu::resize::{self, ResizeShape};
use super::unary_node::backward_unary;

/// Bilinear resize with PyTorch's taps.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FastResizeBackend: Backend {
    /// `x` `[B, C, H, W]` → `[B, C, out[0], out[1]]`.
    fn fast_resize_bilinear(
        x: FloatTensor<Self>,
        out: [usize; 2],
        align_corners: bool,
    ) -> FloatTensor<Self>;
}

/// The backward kernel the autodiff node calls on the inner backend.
pub(crate) trait ResizeKernels: Backend {
    /// `dx` `[B, C, in_size[0], in_size[1]]` of
    /// [`FastResizeBackend::fast_resize_bilinear`] for the output gradient `dy`.
    fn resize_bilinear_backward(
        dy: FloatTensor<Self>,
        in_size: [usize; 2],
        align_corners: bool,
    ) -> FloatTensor<Self>;
}

impl FastResizeBackend for Flex {
    fn fast_resize_bilinear(x: FlexTensor, out: [usize; 2], align_corners: bool) -> FlexTensor {
        let [b, c, h, w] = x.shape().dims();
        let s = ResizeShape {
            planes: b * c,
            h,
            w,
            oh: out[0],
            ow: out[1],
            align_corners,
        };
        flex_tensor(
            resize::forward(&s, &flex_values(&x)),
            [b, c, out[0], out[1]],
        )
    }
}

impl ResizeKernels for Flex {
    fn resize_bilinear_backward(
        dy: FlexTensor,
        in_size: [usize; 2],
        align_corners: bool,
    ) -> FlexTensor {
        let [b, c, oh, ow] = dy.shape().dims();
        let [h, w] = in_size;
        let s = ResizeShape {
            planes: b * c,
            h,
            w,
            oh,
            ow,
            align_corners,
        };
        flex_tensor(resize::backward(&s, &flex_values(&dy)), [b, c, h, w])
    }
}

/// The autodiff node: a linear map, so it keeps only the input size.
#[derive(Debug)]
struct ResizeNode;

impl<B: Backend + ResizeKernels> Backward<B, 1> for ResizeNode {
    type State = ([usize; 2], bool);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        backward_unary::<B, _>(ops, grads, |(in_size, align_corners), dy| {
            B::resize_bilinear_backward(dy, in_size, align_corners)
        });
    }
}

impl<B: Backend + FastResizeBackend + ResizeKernels, C: CheckpointStrategy> FastResizeBackend
    for Autodiff<B, C>
{
    fn fast_resize_bilinear(
        x: FloatTensor<Self>,
        out: [usize; 2],
        align_corners: bool,
    ) -> FloatTensor<Self> {
        let [_, _, h, w] = x.shape().dims();
        match ResizeNode
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                ([h, w], align_corners),
                B::fast_resize_bilinear(x.into_primitive(), out, align_corners),
            ),
            OpsKind::UnTracked(prep) => prep.finish(B::fast_resize_bilinear(
                x.into_primitive(),
                out,
                align_corners,
            )),
        }
    }
}

/// Whether [`resize_bilinear`] runs the CPU kernels for this tensor: Flex, `f32`,
/// sides not empty.
pub(crate) fn uses_cpu_kernels(x: &Tensor<4>) -> bool {
    let [_, _, h, w] = x.dims();
    x.device().inner() == Device::flex() && x.dtype() == DType::F32 && h > 0 && w > 0
}

/// `[B, C, H, W]` → `[B, C, out[0], out[1]]`, bilinear with PyTorch's taps, on
/// the CPU kernels (callers check [`uses_cpu_kernels`]).
pub(crate) fn resize_bilinear(x: Tensor<4>, out: [usize; 2], align_corners: bool) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FastResizeBackend>::fast_resize_bilinear(
        x.into_dispatch(),
        out,
        align_corners,
    ))
}
