//! VGG's 2x2 stride-2 max pool: on Flex (the CPU) a backend extension with its
//! own autodiff node ([`crate::model::cpu::pool`]), Burn's `max_pool2d`
//! elsewhere.
//!
//! The node keeps the pool's *input* and finds each window's maximum again in
//! the backward. That input is the ReLU output the ReLU node keeps anyway, so
//! nothing is added to a step's memory; Burn's pool kept an `i64` index per
//! output (half its input's size) and ran on one thread.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{DType, Device, Tensor};

use super::cpu::flex::{flex_tensor, flex_values};
use super::cpu::pool::{self, PoolShape};
use super::unary_node::backward_unary;

/// 2x2 max pooling with stride 2 (floor mode: a last odd row or column is dropped).
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FastPoolBackend: Backend {
    /// `x` `[B, C, H, W]` → `[B, C, H / 2, W / 2]`.
    fn fast_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The backward kernel the autodiff node calls on the inner backend.
pub(crate) trait PoolKernels: Backend {
    /// `dx` `[B, C, H, W]` of [`FastPoolBackend::fast_max_pool2x2`] from its input `x`
    /// and the output gradient `dy`.
    fn max_pool2x2_backward(x: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self>;
}

fn shape_of(x: &FlexTensor) -> ([usize; 4], PoolShape) {
    let [b, c, h, w] = x.shape().dims();
    let s = PoolShape {
        planes: b * c,
        h,
        w,
    };
    ([b, c, h, w], s)
}

impl FastPoolBackend for Flex {
    fn fast_max_pool2x2(x: FlexTensor) -> FlexTensor {
        let ([b, c, h, w], s) = shape_of(&x);
        flex_tensor(pool::forward(&s, &flex_values(&x)), [b, c, h / 2, w / 2])
    }
}

impl PoolKernels for Flex {
    fn max_pool2x2_backward(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let (dims, s) = shape_of(&x);
        flex_tensor(
            pool::backward(&s, &flex_values(&x), &flex_values(&dy)),
            dims,
        )
    }
}

/// The autodiff node: keeps the input (shared with the ReLU before it).
#[derive(Debug)]
struct MaxPoolNode;

impl<B: Backend + PoolKernels> Backward<B, 1> for MaxPoolNode {
    type State = FloatTensor<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        backward_unary::<B, _>(ops, grads, B::max_pool2x2_backward);
    }
}

impl<B: Backend + FastPoolBackend + PoolKernels, C: CheckpointStrategy> FastPoolBackend
    for Autodiff<B, C>
{
    fn fast_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPoolNode
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let y = B::fast_max_pool2x2(x.clone());
                prep.finish(x, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_max_pool2x2(x.into_primitive())),
        }
    }
}

/// `[B, C, H, W]` → `[B, C, H / 2, W / 2]`, the maximum of each 2x2 window
/// (stride 2, no padding): the CPU kernels on Flex, Burn's `max_pool2d` elsewhere.
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let on_cpu = x.device().inner() == Device::flex() && x.dtype() == DType::F32;
    // An input smaller than the window is Burn's to report.
    if !on_cpu || h < 2 || w < 2 {
        return max_pool2d(x, MaxPoolOptions::new([2, 2]));
    }
    Tensor::from_dispatch(<Dispatch as FastPoolBackend>::fast_max_pool2x2(
        x.into_dispatch(),
    ))
}
